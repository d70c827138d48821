// Test set-up: the tfjs engine, as the CLI registers it for `brats serve` (see vitest.config.ts).
import { registerTfjsEngine } from '@brats/unet';

registerTfjsEngine();
