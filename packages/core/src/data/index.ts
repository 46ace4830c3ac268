export * from './types.js';
export * from './prng.js';
export * from './pool.js';
export * from './csv.js';
export * from './hash.js';
export * from './sniff.js';
export * from './competition.js';
export * from './folders.js';
export * from './load.js';
export * from './validate.js';
export * from './split.js';
export * from './decode.js';
export * from './preprocess.js';
export * from './augment.js';
export { augmentViewFor } from './augment-views.js';
export * from './loader.js';
export * from './synthetic.js';
export { loadPredictionSet, type PredictionSetOptions } from './prediction-set.js';
export { clipForMessage, DEFAULT_MAX_SHOWN_CHARS } from './clip.js';
export {
  DEFAULT_MAX_IMAGE_BYTES,
  imageFileRefusal,
  readImageFile,
  type ImageFileErrorDetails,
  type ImageFileRefusal,
  type ReadImageFileOptions,
} from './image-file.js';
export {
  combineContentHash,
  contentHashSamples,
  datasetContentHash,
  datasetIdentity,
  DEFAULT_CONTENT_SAMPLE_SIZE,
  fileDigest,
  joinDatasetIdentity,
  type ContentHashMode,
  type ContentHashOptions,
  type DatasetIdentitySettings,
} from './content-hash.js';
