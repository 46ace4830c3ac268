export { type Culprit, type Dataset, type Sample } from './types.js';
export { mix32, mulberry32, MULBERRY32_INCREMENT, mulberry32Output, randInt, type Rng, rngFor, seedFrom, shuffleInPlace, uniform } from './prng.js';
export { mapLimit } from './pool.js';
export { type CsvRow, type CsvTable, parseCsvLines } from './csv.js';
export { datasetHash } from './hash.js';
export { type ImageFormat, sniffImageFormat } from './sniff.js';
export { type CompetitionReadOptions, readCompetition, readTestList, type TestListReadOptions } from './competition.js';
export { type FolderReadOptions, IMAGE_EXTENSIONS, type ImageFolderReadOptions, listImageFiles, readFolders, readImageFolder } from './folders.js';
export { loadDataset, type LoadDatasetOptions } from './load.js';
export { checkImageFile, type CheckImageFileOptions, formatCulprits, validateDataset, type ValidateDatasetOptions } from './validate.js';
export { type ValidationResult } from './validate.js';
export { type BatchesOptions, type DataSplit, epochOrder, makeBatches, stratifiedSplit, type StratifiedSplitOptions } from './split.js';
export { type DecodedImage, decodeImage, type DecodeOptions, type ResizeKernel } from './decode.js';
export { CAFFE_MEANS_BGR, preprocessInPlace, preprocessInto, preprocessPixels, unpreprocess } from './preprocess.js';
export { affineMatrix, type AffineParams, affineParamsFor, applyAffine, type AugmentationInput, augmentImage, IDENTITY_PARAMS } from './augment.js';
export { isAugmenting, normalizeAugmentation, randomAffineParams } from './augment.js';
export { type ImageBatch, ImageBatchLoader, type ImageBatchLoaderOptions, type LoadBatchOptions } from './loader.js';
export { generateSyntheticScenes, renderSyntheticScene, SYNTHETIC_CLASS_NAMES, type SyntheticScenesOptions } from './synthetic.js';
export { type SyntheticScenesResult, syntheticSceneSvg } from './synthetic.js';
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
