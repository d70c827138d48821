import { defineProject } from 'vitest/config';
import { bratsProject } from '@brats/vitest-config';

export default defineProject(bratsProject('@brats/queue'));
