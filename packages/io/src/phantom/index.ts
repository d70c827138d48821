export {
  generatePhantom,
  phantomAffine,
  PHANTOM_TISSUES,
  DEFAULT_PHANTOM_SIZE,
  type GeneratePhantomOptions,
  type PhantomCase,
  type PhantomChannels,
} from './generate.js';
export {
  writePhantomDataset,
  createPhantomCaseId,
  PHANTOM_LAYOUTS,
  type PhantomLayout,
  type WritePhantomDatasetOptions,
  type PhantomDatasetSummary,
} from './dataset.js';
export { createRandom, deriveCaseSeed, type RandomSource } from './random.js';
