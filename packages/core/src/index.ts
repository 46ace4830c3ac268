// @dptrain/core — explicit barrel. Each area keeps its own index.ts.
export { DptrainError, type DptrainErrorCode, isDptrainError } from './errors.js';
export { debugFromEnv, deviceStepFromEnv, LOCAL_WORKERS_VAR, localWorkerCount, nativeOptimizerAllowed } from './env.js';
export {
  AUGMENT_PRESET,
  type Augmentation,
  AugmentationSchema,
  type BackboneDefaults,
  backboneDefaults,
  type BackboneSpec,
  BackboneSpecSchema,
} from './config.js';
export { NO_AUGMENTATION } from './config.js';
export { type GradientPrecision, GradientPrecisionSchema, type HeadSpec, HeadSpecSchema, parseRunConfig, PHASE_DEFAULTS, type PhaseSpec } from './config.js';
export { PhaseSpecSchema, type PreprocessMode, PreprocessModeSchema, type RunConfig, type RunConfigInput, RunConfigSchema } from './config.js';
export { wireGradientPrecision, withBackboneDefaults } from './config.js';
export { addErrorContext, addKernelToError, asError, bfloat16ToFloat32, type Clock, describeErrorContext, describeUnexpectedError } from './util/index.js';
export { type ErrorContext, errorContext, float32ToBfloat16, mix32, mixSeed, mulberry32, MULBERRY32_INCREMENT, mulberry32Output } from './util/index.js';
export { randInt, type Rng, rngFor, seedFrom, shuffleInPlace, systemClock, uniform, withErrorContext } from './util/index.js';
export { EventBus, type PhaseName, type ProgressTask, type RunEvent, type RunEventListener, type RunEventType, sanitizeEvent } from './events/index.js';
export { type LocalWorkerStat, type StepWorkerStat, stripControl, type StripControlOptions, type WorkerInfo, type WorkerState } from './events/index.js';
export { activateWasm, ALLOW_GROWTH_VAR, applyMemoryGrowth, applyPrecision, assessGpu, BACKEND_ORDER, BACKEND_PACKAGES } from './backend/index.js';
export { type BackendInfo, type BackendLoader, type BackendLoaders, type BackendName, type Bf16Isa, bf16Unsupported } from './backend/index.js';
export { COMPUTE_CAPABILITY_BY_NAME, computeCapabilityByName, type Conv2DBackpropFilterArgs, conv2dBackpropFilterOps } from './backend/index.js';
export { type Conv2DBackpropInputArgs, conv2dBackpropInputOps, countOtherGpuProcesses, type CudaVersions, DEFAULT_LOADERS } from './backend/index.js';
export { type DepthwiseBackpropFilterArgs, depthwiseBackpropFilterOps, type DepthwiseBackpropInputArgs, depthwiseBackpropInputOps } from './backend/index.js';
export { describeBackend, detectBf16Isa, EXPECTED_CUDA_MAJOR, EXPECTED_CUDNN_MAJOR, explainVerdict, findCudaLibraries } from './backend/index.js';
export { FIRST_UNSUPPORTED_MAJOR, gatherGpuFacts, type GatherGpuFactsOptions, type GpuDescription, type GpuFacts } from './backend/index.js';
export { type GpuPreflightOptions, type GpuPreflightResult, type GpuSupport, type GpuVerdict, importPackage, isBackendName } from './backend/index.js';
export { type LoadedBackend, type LoaderContext, majorsOf, type MemoryGrowthDecision, type MemoryGrowthFacts, NVIDIA_SMI_FIELDS } from './backend/index.js';
export { parseComputeCapability, parseNvidiaSmi, pickVersion, type Precision, type PrecisionSetting, preflightTfjsNodeGpu } from './backend/index.js';
export { queryGpus, type QueryGpusOptions, readTensorInto, registerWasmTrainingKernels, resolveBackend } from './backend/index.js';
export { type ResolveBackendOptions, resolvePrecision, type ResolvePrecisionOptions, shortReason, startBackend, TFJS_NODE_GPU_PTX } from './backend/index.js';
export { TFJS_NODE_GPU_SASS, type TfjsNodeGpuVerdict, tfjsNodeGpuVerdict, versionsOf, visibleGpus, WASM_TRAINING_KERNELS } from './backend/index.js';
export { wasmBinaryDir, type WasmTrainingKernel, withRunPrecision, workerPrecision } from './backend/index.js';
export { affineMatrix, type AffineParams, affineParamsFor, applyAffine, type AugmentationInput, augmentImage, type BatchesOptions } from './data/index.js';
export { augmentViewFor } from './data/index.js';
export { CAFFE_MEANS_BGR, checkImageFile, type CheckImageFileOptions, clipForMessage, combineContentHash } from './data/index.js';
export { type CompetitionReadOptions, type ContentHashMode, type ContentHashOptions, contentHashSamples, type CsvRow, type CsvTable } from './data/index.js';
export { type Culprit, type Dataset, datasetContentHash, datasetHash, datasetIdentity, type DatasetIdentitySettings, type DataSplit } from './data/index.js';
export { type DecodedImage, decodeImage, type DecodeOptions, DEFAULT_CONTENT_SAMPLE_SIZE, DEFAULT_MAX_IMAGE_BYTES } from './data/index.js';
export { DEFAULT_MAX_SHOWN_CHARS, epochOrder, fileDigest, type FolderReadOptions, formatCulprits, generateSyntheticScenes } from './data/index.js';
export { IDENTITY_PARAMS, IMAGE_EXTENSIONS, type ImageBatch, ImageBatchLoader, type ImageBatchLoaderOptions } from './data/index.js';
export { type ImageFileErrorDetails, type ImageFileRefusal, imageFileRefusal, type ImageFolderReadOptions, type ImageFormat } from './data/index.js';
export { isAugmenting, joinDatasetIdentity, listImageFiles, type LoadBatchOptions, loadDataset, type LoadDatasetOptions } from './data/index.js';
export { loadPredictionSet, makeBatches, normalizeAugmentation, parseCsvLines, type PredictionSetOptions, preprocessInPlace } from './data/index.js';
export { preprocessInto, preprocessPixels, randomAffineParams, readCompetition, readFolders, readImageFile } from './data/index.js';
export { type ReadImageFileOptions, readImageFolder, readTestList, renderSyntheticScene, type ResizeKernel, type Sample } from './data/index.js';
export { sniffImageFormat, stratifiedSplit, type StratifiedSplitOptions, SYNTHETIC_CLASS_NAMES, type SyntheticScenesOptions } from './data/index.js';
export { type SyntheticScenesResult, syntheticSceneSvg, type TestListReadOptions, unpreprocess, validateDataset } from './data/index.js';
export { type ValidateDatasetOptions, type ValidationResult } from './data/index.js';
export { ancestorsInOrder, applyHead, assignLayerWeights, type Backbone, buildHeadless, buildTail, buildVgg, type BuildVggOptions } from './models/index.js';
export { chooseUnfreeze, completeBatchNorm, type CompletedBatchNorm, createBackbone, type CreateBackboneOptions, createHead } from './models/index.js';
export {
  DEFAULT_UNFREEZE_BLOCKS,
  DEFAULT_UNFREEZE_TOP,
  MEASURED_UNFREEZE,
  measuredUnfreeze,
  defaultVggWeightsPath,
  type DropoutKey,
  dropoutMask,
} from './models/index.js';
export { type ErrorLabelOptions, exportKerasH5, type FileSystemHandler, fileSystemHandler, getLayer, guessUnfreezeBlock } from './models/index.js';
export { type H5Layer, type H5Weight, hasPrefix, type Head, HEAD_LAYERS, type HeadOptions, inboundLayers, isMergeLayer } from './models/index.js';
export { type KerasExportSummary, kerasLayersOf, type KerasModelH5, labelTfErrors, learnableWeightCount, loadH5Weights } from './models/index.js';
export { loadLayersModelWithCompleteBatchNorm, loadTfjsWeights, loadTrainedModel, loadWeightsInto, makeConstant, modelJsonPath } from './models/index.js';
export { originalOutput, type PhaseSplit, readKerasH5, resolveSplit, saveTrainedModel, type SaveTrainedModelArgs } from './models/index.js';
export { singleTensorBoundaries, splitWeights, TINY_VGG_WIDTHS, type TrainedModel, type TrainedModelMetadata, type UnfreezeChoice } from './models/index.js';
export { VGG16_CONVS, VGG16_DEFAULTS, VGG16_NOTOP_H5, VGG16_WIDTHS, WEIGHTS_FILE, writeKerasH5, writeKerasModelH5 } from './models/index.js';
export { type AdamKernel, AdamOptimizer, type AdamOptions, ADAMW_DEFAULT_WEIGHT_DECAY, type AggregatedGradients } from './training/index.js';
export { applyTrainingUpdate, applyWeightDecay, argmaxRows, balancedClassWeights, type BatchLogs, type BatchSource } from './training/index.js';
export { BestCheckpoint, type BestCheckpointOptions, type BucketRange, bucketRanges, bucketSumOfSquares, CallbackList } from './training/index.js';
export { CHECKPOINT_FILE, checkpointPath, checkStepResult, type ClassMetrics, clipByGlobalNorm, clipScale, computeBaseHash } from './training/index.js';
export { computeMetrics, computeTreeGradients, computeTreeGradientsOnDevice, createOptimizer, createReplica, decodeState } from './training/index.js';
export { DEFAULT_BUCKET_FLOATS, DEVICE_STEP_DEFAULTS, DeviceFeatureCache, type DeviceGradients, deviceStepDefault } from './training/index.js';
export { type DeviceStepReplica, EarlyStopping, type EarlyStoppingOptions, encodeEvent, encodeState, ENVELOPE_HEADER_BYTES } from './training/index.js';
export { ENVELOPE_MAGIC, epochBatches, type EpochLogs, epochPermutation, type EpochProgress, type EpochRecord } from './training/index.js';
export { type EvaluationMetrics, EventFileWriter, type EventFileWriterOptions, type ExecutorFactory, FeatureCache } from './training/index.js';
export { type FeatureCacheOptions, type FeatureCacheStats, featureKey, type FlatOptimizer, type FloatRange, globalBatch } from './training/index.js';
export { globalEpoch, GradientNormGuard, type GradientNormGuardOptions, type GradientResult, hasAdamKernel, hashBackboneWeights } from './training/index.js';
export { InProcessExecutor, type InProcessExecutorOptions, isDeviceStepReplica, joinOptimizerStates, l2Norm } from './training/index.js';
export { type LearningRateScheduleKind, LearningRateScheduler, type LearningRateSchedulerOptions, loadRunModel } from './training/index.js';
export { localExecutorFactory, type LocalExecutorFactoryOptions, maskedCrc32c, meanOfTwo, mergeGradientTree, microBatchCount } from './training/index.js';
export { microBatchSlices, type ModelExportingExecutor, ModelReplica, normFromBucketSums, openCheckpoint, type OpenedCheckpoint } from './training/index.js';
export { type OptimizerChoice, optimizerFromState, type OptimizerState, packBytes, phaseBaseLearningRate, phaseSchedule } from './training/index.js';
export { type PrepareDataOptions, prepareTrainData, preprocessOnDevice, type RangedGradient, rangeSumOfSquares, readCheckpoint } from './training/index.js';
export { type ReadCheckpointOptions, ReduceLrOnPlateau, type ReduceLrOnPlateauOptions, type Replica, type ReplicaOptions } from './training/index.js';
export { resolveClassWeights, resolveClassWeightsFromLabelled, RESUME_SAFE_SETTINGS, resumeMismatches, type ResumePosition } from './training/index.js';
export { RUN_MODEL_DIR, type RunFingerprint, runFingerprint, type RunModelMeta, type RunReport, runTraining, runTrainingStep } from './training/index.js';
export { type MergeKernel, mergeTwoInto, type NonFiniteKernel, setVectorKernels } from './training/index.js';
export { type SumsOfSquaresKernel, vectorKernelNames, type VectorKernels } from './training/index.js';
export { saveRun, type SaveRunOptions, scaleRange, scheduledLearningRate, scoreSubmission, sealCheckpoint, setAdamKernel } from './training/index.js';
export { SgdOptimizer, type SgdOptions, shardRanges, sliceOptimizerState, sliceSizes, splitBatch, type StepContext } from './training/index.js';
export { stepsPerEpoch, type SubmissionScore, syncDirectory, TensorBoardLogger, type TensorBoardLoggerOptions, tfRecord } from './training/index.js';
export { type TrainData, type TrainingCallback, type TrainingCheckpoint, type TrainingControl, type TrainingExecutor } from './training/index.js';
export { type TrainingUpdate, type TrainOptions, type TrainResult, type TrainStepResult, TransferCounter, treeNodeSlices } from './training/index.js';
export { unpackBytes, useNativeOptimizer, type WeightSpec, writeCheckpoint, writeFileAtomic, writeSubmission } from './training/index.js';
export { chunks, type SampleRange, type SlicePeer, treeMid, weightedTreeNodeSlices } from './training/index.js';
export { AcceptedSchema, AttachSchema, authResponse, AuthSchema, BLOB_MIN_BYTES, ByeSchema, ChallengeSchema, type ClientRole } from './protocol/index.js';
export { CLOSE_CODES, type CloseCode, closeCodeFor } from './protocol/index.js';
export { type BlobDestination } from './protocol/index.js';
export { ClientRoleSchema, coordinatorProof, createNonce, decodeMessage, decodeWireGradients, DEFAULT_PROTOCOL_OPTIONS } from './protocol/index.js';
export { encodeMessage, encodeMessageParts, ErrorSchema, EventsSchema, firstNonFinite, float16ToFloat32, float32ToFloat16 } from './protocol/index.js';
export { type FragmentSink, GradientsSchema, GradRangeSchema, HeartbeatSchema, HelloSchema, JoinSchema, type Message } from './protocol/index.js';
export { type MessageOf, MessageSchema, type MessageType, NONCE_BYTES, type Outgoing, packGradients, PhaseReadySchema } from './protocol/index.js';
export { PhaseSchema, PredictionsSchema, PredictSchema, PROTOCOL_VERSION, type ProtocolOptions, type ResolvedProtocolOptions } from './protocol/index.js';
export { resolveProtocolOptions, RunEventWireSchema, sendMessage, ShardMapSchema, ShardReadySchema, ShardReducedSchema } from './protocol/index.js';
export { ShardReduceSchema, ShardSeededSchema, ShardSeedSchema, ShardStateReplySchema, ShardStateSchema, ShardUpdatedSchema } from './protocol/index.js';
export { ShardUpdateSchema, StepSchema, tokenEntropyBits, type TokenStrengthOptions, tokenWeakness, unpackGradients } from './protocol/index.js';
export { verifyAuthResponse, verifyCoordinatorProof, WeightsAckSchema, WeightSpecWireSchema, WeightsRangeSchema, WeightsSchema } from './protocol/index.js';
export { WelcomeSchema } from './protocol/index.js';
export { mergeConfigOverrides, readConfigFile, resolveRunConfig, RUN_CONFIG_DEFAULTS, type RunConfigOverrides } from './config-resolve.js';
export { runConfigToYaml, unknownConfigKeys } from './config-resolve.js';
