export { type AggregatedGradients, type GradientResult, type Replica, type StepContext, type TrainingExecutor, type TrainingUpdate } from './types.js';
export { type TrainStepResult, type WeightSpec } from './types.js';
export { type AdamKernel, AdamOptimizer, type AdamOptions, ADAMW_DEFAULT_WEIGHT_DECAY, applyWeightDecay, createOptimizer } from './optimizers.js';
export { type FlatOptimizer, hasAdamKernel, type OptimizerChoice, optimizerFromState, type OptimizerState, setAdamKernel } from './optimizers.js';
export { SgdOptimizer, type SgdOptions, useNativeOptimizer } from './optimizers.js';
export { argmaxRows, type ClassMetrics, computeMetrics, type EvaluationMetrics } from './metrics.js';
export { type BatchLogs, BestCheckpoint, type BestCheckpointOptions, CallbackList, EarlyStopping, type EarlyStoppingOptions } from './callbacks.js';
export { type EpochLogs, ReduceLrOnPlateau, type ReduceLrOnPlateauOptions, type TrainingCallback, type TrainingControl } from './callbacks.js';
export { epochBatches, epochPermutation, globalBatch, stepsPerEpoch } from './sharding.js';
export { decodeState, encodeState } from './state-codec.js';
export { syncDirectory, writeFileAtomic } from './atomic-write.js';
export { CHECKPOINT_FILE, checkpointPath, type EpochProgress, type EpochRecord, readCheckpoint, type ReadCheckpointOptions } from './checkpoint.js';
export { type TrainingCheckpoint, writeCheckpoint } from './checkpoint.js';
export { loadRunModel, RUN_MODEL_DIR, type RunModelMeta, saveRun, type SaveRunOptions } from './run-model.js';
export { writeSubmission } from './submission.js';
export { scoreSubmission, type SubmissionScore } from './score.js';
export { type ExecutorFactory, globalEpoch, type ModelExportingExecutor, type RunReport, runTraining, type TrainData, type TrainOptions } from './recipe.js';
export { type TrainResult } from './recipe.js';
export { type PrepareDataOptions, prepareTrainData } from './data-prep.js';
export { computeTreeGradients, meanOfTwo, mergeGradientTree, type RangedGradient } from './gradient-tree.js';
export { chunks, microBatchCount, microBatchSlices, type SampleRange, type SlicePeer, sliceSizes, splitBatch } from './batch-slices.js';
export { treeMid, treeNodeSlices, weightedTreeNodeSlices } from './batch-slices.js';
export { InProcessExecutor, type InProcessExecutorOptions } from './in-process-executor.js';
export { localExecutorFactory, type LocalExecutorFactoryOptions } from './local-executor.js';
export { type BatchSource, createReplica, hashBackboneWeights, ModelReplica, type ReplicaOptions } from './replica.js';
export { computeBaseHash } from './base-hash.js';
export { FeatureCache, type FeatureCacheOptions, type FeatureCacheStats, featureKey } from './feature-cache.js';
export { encodeEvent, EventFileWriter, type EventFileWriterOptions, maskedCrc32c, tfRecord } from './tensorboard/event-file.js';
export { TensorBoardLogger, type TensorBoardLoggerOptions } from './tensorboard/tensorboard-logger.js';
export { balancedClassWeights, resolveClassWeights, resolveClassWeightsFromLabelled } from './class-weights.js';
export { type LearningRateScheduleKind, LearningRateScheduler, type LearningRateSchedulerOptions, phaseBaseLearningRate } from './lr-schedule.js';
export { phaseSchedule, scheduledLearningRate } from './lr-schedule.js';
export { ENVELOPE_HEADER_BYTES, ENVELOPE_MAGIC, openCheckpoint, type OpenedCheckpoint, sealCheckpoint } from './checkpoint-envelope.js';
export { RESUME_SAFE_SETTINGS, resumeMismatches, type ResumePosition, type RunFingerprint, runFingerprint } from './run-fingerprint.js';
export { computeTreeGradientsOnDevice, DEVICE_STEP_DEFAULTS, type DeviceGradients, deviceStepDefault, type DeviceStepReplica } from './device-step.js';
export { isDeviceStepReplica } from './device-step.js';
export { DeviceFeatureCache } from './device-feature-cache.js';
export { TransferCounter } from './transfer-counter.js';
export { packBytes, preprocessOnDevice, unpackBytes } from './device-preprocess.js';
export { clipByGlobalNorm, clipScale, GradientNormGuard, type GradientNormGuardOptions, l2Norm, scaleRange } from './gradient-norm.js';
export { type BucketRange, bucketRanges, bucketSumOfSquares, DEFAULT_BUCKET_FLOATS, normFromBucketSums, rangeSumOfSquares } from './buckets.js';
export { applyTrainingUpdate, checkStepResult, runTrainingStep } from './training-step.js';
export { type FloatRange, joinOptimizerStates, shardRanges, sliceOptimizerState } from './shard-ranges.js';
export {
  type MergeKernel,
  mergeTwoInto,
  type NonFiniteKernel,
  setVectorKernels,
  type SumsOfSquaresKernel,
  vectorKernelNames,
  type VectorKernels,
} from './vector-kernels.js';
