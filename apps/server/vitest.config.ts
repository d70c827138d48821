import { defineProject } from 'vitest/config';
import { bratsProject } from '@brats/vitest-config';

const project = bratsProject('@brats/server');

// The server registers only the runtime engines; whoever hosts it adds TensorFlow.js (the CLI does, lazily).
// The tests do the same, so that bundles without model.onnx can be served.
export default defineProject({ ...project, test: { ...project.test, setupFiles: ['test/register-tfjs.ts'] } });
