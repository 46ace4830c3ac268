// @dptrain/core — explicit barrel. Each area keeps its own index.ts.
export { DptrainError, type DptrainErrorCode, isDptrainError } from './errors.js';
export { debugFromEnv, deviceStepFromEnv, LOCAL_WORKERS_VAR, localWorkerCount, nativeOptimizerAllowed } from './env.js';
export { type Augmentation, AugmentationSchema, type BackboneSpec, BackboneSpecSchema, type HeadSpec, HeadSpecSchema, parseRunConfig } from './config.js';
export { type PhaseSpec, PhaseSpecSchema, type PreprocessMode, PreprocessModeSchema, type RunConfig, type RunConfigInput } from './config.js';
export { RunConfigSchema } from './config.js';
export { addErrorContext, addKernelToError, asError, bfloat16ToFloat32, type Clock, describeErrorContext, describeUnexpectedError } from './util/index.js';
export { type ErrorContext, errorContext, float32ToBfloat16, systemClock, withErrorContext } from './util/index.js';
export { EventBus, type PhaseName, type ProgressTask, type RunEvent, type RunEventListener, type RunEventType, sanitizeEvent } from './events/index.js';
export { type StepWorkerStat, stripControl, type StripControlOptions, type WorkerInfo, type WorkerState } from './events/index.js';
export { activateWasm, ALLOW_GROWTH_VAR, applyMemoryGrowth, applyPrecision, assessGpu, BACKEND_ORDER, BACKEND_PACKAGES } from './backend/index.js';
export { type BackendInfo, type BackendLoader, type BackendLoaders, type BackendName, type Bf16Isa, bf16Unsupported } from './backend/index.js';
export { COMPUTE_CAPABILITY_BY_NAME, computeCapabilityByName, type Conv2DBackpropFilterArgs, conv2dBackpropFilterOps } from './backend/index.js';
export { type Conv2DBackpropInputArgs, conv2dBackpropInputOps, countOtherGpuProcesses, type CudaVersions } from './backend/index.js';
export { DEFAULT_LOADERS, type DepthwiseBackpropFilterArgs, depthwiseBackpropFilterOps, type DepthwiseBackpropInputArgs } from './backend/index.js';
export { depthwiseBackpropInputOps, describeBackend, detectBf16Isa, EXPECTED_CUDA_MAJOR, EXPECTED_CUDNN_MAJOR, explainVerdict } from './backend/index.js';
export { findCudaLibraries, gatherGpuFacts, type GatherGpuFactsOptions, type GpuDescription, type GpuFacts } from './backend/index.js';
export { type GpuPreflightOptions, type GpuPreflightResult, type GpuSupport, type GpuVerdict, importPackage, isBackendName } from './backend/index.js';
export { type LoadedBackend, type LoaderContext, type MemoryGrowthDecision, type MemoryGrowthFacts } from './backend/index.js';
export { NVIDIA_SMI_FIELDS, parseComputeCapability, parseNvidiaSmi, pickVersion, type Precision } from './backend/index.js';
export { type PrecisionSetting, preflightTfjsNodeGpu, queryGpus, type QueryGpusOptions, readTensorInto } from './backend/index.js';
export {
  registerWasmTrainingKernels,
  resolveBackend,
  type ResolveBackendOptions,
  startBackend,
  resolvePrecision,
  type ResolvePrecisionOptions,
} from './backend/index.js';
export { shortReason, TFJS_NODE_GPU_PTX, TFJS_NODE_GPU_SASS, type TfjsNodeGpuVerdict, tfjsNodeGpuVerdict, useNativeOptimizer } from './backend/index.js';
export { visibleGpus, WASM_TRAINING_KERNELS, wasmBinaryDir, type WasmTrainingKernel, withRunPrecision, workerPrecision } from './backend/index.js';
export { affineMatrix, type AffineParams, affineParamsFor, applyAffine, type AugmentationInput, augmentImage, type BatchesOptions } from './data/index.js';
export { CAFFE_MEANS_BGR, checkImageFile, type CheckImageFileOptions, clipForMessage, combineContentHash } from './data/index.js';
export { type CompetitionReadOptions, type ContentHashMode, type ContentHashOptions, contentHashSamples, type CsvRow, type CsvTable } from './data/index.js';
export { type Culprit, type Dataset, datasetContentHash, datasetHash, datasetIdentity, type DatasetIdentitySettings, type DataSplit } from './data/index.js';
export { type DecodedImage, decodeImage, type DecodeOptions, DEFAULT_CONTENT_SAMPLE_SIZE, DEFAULT_MAX_IMAGE_BYTES } from './data/index.js';
export { DEFAULT_MAX_SHOWN_CHARS, epochOrder, fileDigest, type FolderReadOptions, formatCulprits, generateSyntheticScenes } from './data/index.js';
export { IDENTITY_PARAMS, IMAGE_EXTENSIONS, type ImageBatch, ImageBatchLoader, type ImageBatchLoaderOptions } from './data/index.js';
export { type ImageFileErrorDetails, type ImageFileRefusal, imageFileRefusal, type ImageFolderReadOptions, type ImageFormat } from './data/index.js';
export { isAugmenting, joinDatasetIdentity, listImageFiles, type LoadBatchOptions, loadDataset, type LoadDatasetOptions } from './data/index.js';
export { loadPredictionSet, makeBatches, mapLimit, mix32, mulberry32, MULBERRY32_INCREMENT, mulberry32Output, normalizeAugmentation } from './data/index.js';
export { parseCsvLines, type PredictionSetOptions, preprocessInPlace, preprocessInto, preprocessPixels, randInt, randomAffineParams } from './data/index.js';
export { readCompetition, readFolders, readImageFile, type ReadImageFileOptions, readImageFolder, readTestList, renderSyntheticScene } from './data/index.js';
export { type ResizeKernel, type Rng, rngFor, type Sample, seedFrom, shuffleInPlace, sniffImageFormat } from './data/index.js';
export { stratifiedSplit, type StratifiedSplitOptions, SYNTHETIC_CLASS_NAMES, type SyntheticScenesOptions } from './data/index.js';
export { type SyntheticScenesResult, syntheticSceneSvg, type TestListReadOptions, uniform, unpreprocess, validateDataset } from './data/index.js';
export { type ValidateDatasetOptions, type ValidationResult } from './data/index.js';
export { ancestorsInOrder, applyHead, assignLayerWeights, type Backbone, buildHeadless, buildTail, buildVgg, type BuildVggOptions } from './models/index.js';
export { completeBatchNorm, type CompletedBatchNorm, createBackbone, type CreateBackboneOptions, createHead } from './models/index.js';
export { DEFAULT_UNFREEZE_BLOCKS, DEFAULT_UNFREEZE_TOP, defaultVggWeightsPath, type DropoutKey, dropoutMask } from './models/index.js';
export { type ErrorLabelOptions, exportKerasH5, type FileSystemHandler, fileSystemHandler, getLayer, guessUnfreezeBlock } from './models/index.js';
export { type H5Layer, type H5Weight, hasPrefix, type Head, HEAD_LAYERS, type HeadOptions, inboundLayers, isMergeLayer } from './models/index.js';
export { type KerasExportSummary, kerasLayersOf, type KerasModelH5, labelTfErrors, learnableWeightCount, loadH5Weights } from './models/index.js';
export { loadLayersModelWithCompleteBatchNorm, loadTfjsWeights, loadTrainedModel, loadWeightsInto, makeConstant, modelJsonPath } from './models/index.js';
export { originalOutput, type PhaseSplit, readKerasH5, resolveSplit, saveTrainedModel, type SaveTrainedModelArgs } from './models/index.js';
export { singleTensorBoundaries, splitWeights, TINY_VGG_WIDTHS, type TrainedModel, type TrainedModelMetadata, VGG16_CONVS } from './models/index.js';
export { VGG16_NOTOP_H5, VGG16_WIDTHS, WEIGHTS_FILE, writeKerasH5, writeKerasModelH5 } from './models/index.js';
export { type AdamKernel, AdamOptimizer, type AdamOptions, ADAMW_DEFAULT_WEIGHT_DECAY, type AggregatedGradients } from './training/index.js';
export { applyWeightDecay, argmaxRows, balancedClassWeights, type BatchLogs, type BatchSource, BestCheckpoint } from './training/index.js';
export { type BestCheckpointOptions, CallbackList, CHECKPOINT_FILE, checkpointPath, type ClassMetrics, clipByGlobalNorm } from './training/index.js';
export { computeBaseHash, computeMetrics, computeTreeGradients, computeTreeGradientsOnDevice, createOptimizer } from './training/index.js';
export { createReplica, decodeState, DEVICE_STEP_DEFAULTS, DeviceFeatureCache, type DeviceGradients } from './training/index.js';
export { deviceStepDefault, type DeviceStepReplica, EarlyStopping, type EarlyStoppingOptions, encodeEvent, encodeState } from './training/index.js';
export { ENVELOPE_HEADER_BYTES, ENVELOPE_MAGIC, epochBatches, type EpochLogs, epochPermutation, type EpochProgress } from './training/index.js';
export { type EpochRecord, type EvaluationMetrics, EventFileWriter, type EventFileWriterOptions, type ExecutorFactory } from './training/index.js';
export { FeatureCache, type FeatureCacheOptions, type FeatureCacheStats, featureKey, type FlatOptimizer, globalBatch } from './training/index.js';
export { globalEpoch, GradientNormGuard, type GradientNormGuardOptions, type GradientResult, hasAdamKernel, hashBackboneWeights } from './training/index.js';
export { InProcessExecutor, type InProcessExecutorOptions, isDeviceStepReplica, l2Norm, type LearningRateScheduleKind } from './training/index.js';
export { LearningRateScheduler, type LearningRateSchedulerOptions, loadRunModel, localExecutorFactory } from './training/index.js';
export { type LocalExecutorFactoryOptions, maskedCrc32c, meanOfTwo, mergeGradientTree, microBatchCount, microBatchSlices } from './training/index.js';
export { mixSeed, type ModelExportingExecutor, ModelReplica, openCheckpoint, type OpenedCheckpoint, type OptimizerChoice } from './training/index.js';
export { optimizerFromState, type OptimizerState, packBytes, phaseBaseLearningRate, phaseSchedule, type PrepareDataOptions } from './training/index.js';
export { prepareTrainData, preprocessOnDevice, type RangedGradient, readCheckpoint } from './training/index.js';
export { type ReadCheckpointOptions, ReduceLrOnPlateau, type ReduceLrOnPlateauOptions, type Replica, type ReplicaOptions } from './training/index.js';
export { resolveClassWeights, resolveClassWeightsFromLabelled, RESUME_SAFE_SETTINGS, resumeMismatches, type ResumePosition } from './training/index.js';
export { RUN_MODEL_DIR, type RunFingerprint, runFingerprint, type RunModelMeta, type RunReport, runTraining, saveRun } from './training/index.js';
export { type SaveRunOptions, scheduledLearningRate, scoreSubmission, sealCheckpoint, SeededRandom, setAdamKernel, SgdOptimizer } from './training/index.js';
export { type SgdOptions, sliceSizes, splitBatch, type StepContext, stepsPerEpoch, type SubmissionScore, syncDirectory } from './training/index.js';
export { TensorBoardLogger, type TensorBoardLoggerOptions, tfRecord, type TrainData, type TrainingCallback } from './training/index.js';
export { type TrainingCheckpoint, type TrainingControl, type TrainingExecutor, type TrainOptions, type TrainResult } from './training/index.js';
export { TransferCounter, treeNodeSlices, unpackBytes, type WeightSpec, writeCheckpoint, writeFileAtomic, writeSubmission } from './training/index.js';
export { AcceptedSchema, AttachSchema, authResponse, AuthSchema, BLOB_MIN_BYTES, ByeSchema, ChallengeSchema, type ClientRole } from './protocol/index.js';
export { ClientRoleSchema, coordinatorProof, createNonce, decodeMessage, DEFAULT_PROTOCOL_OPTIONS, encodeMessage } from './protocol/index.js';
export { encodeMessageParts, ErrorSchema, EventsSchema, firstNonFinite, float16ToFloat32, float32ToFloat16, type FragmentSink } from './protocol/index.js';
export { GradientsSchema, HeartbeatSchema, HelloSchema, JoinSchema, type Message, type MessageOf, MessageSchema } from './protocol/index.js';
export { type MessageType, NONCE_BYTES, type Outgoing, packGradients, PhaseReadySchema, PhaseSchema, PredictionsSchema } from './protocol/index.js';
export { PredictSchema, PROTOCOL_VERSION, type ProtocolOptions, type ResolvedProtocolOptions, resolveProtocolOptions } from './protocol/index.js';
export { RunEventWireSchema, sendMessage, StepSchema, tokenEntropyBits, type TokenStrengthOptions, tokenWeakness } from './protocol/index.js';
export { unpackGradients, verifyAuthResponse, verifyCoordinatorProof, WeightsAckSchema, WeightSpecWireSchema, WeightsSchema } from './protocol/index.js';
export { WelcomeSchema } from './protocol/index.js';
export {
  RUN_CONFIG_DEFAULTS,
  backboneDefaults,
  mergeConfigOverrides,
  readConfigFile,
  resolveRunConfig,
  runConfigToYaml,
  unknownConfigKeys,
  type RunConfigOverrides,
} from './config-resolve.js';
