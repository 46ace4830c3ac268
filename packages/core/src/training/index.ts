export * from './types.js';
export * from './rng.js';
export * from './optimizers.js';
export * from './metrics.js';
export * from './callbacks.js';
export * from './sharding.js';
export * from './state-codec.js';
export * from './atomic-write.js';
export * from './checkpoint.js';
export * from './run-model.js';
export * from './submission.js';
export * from './score.js';
export * from './recipe.js';
export * from './data-prep.js';
export * from './gradient-tree.js';
export {
  chunks,
  microBatchCount,
  microBatchSlices,
  sliceSizes,
  splitBatch,
  treeMid,
  treeNodeSlices,
  weightedTreeNodeSlices,
  type SampleRange,
  type SlicePeer,
} from './batch-slices.js';
export * from './in-process-executor.js';
export * from './local-executor.js';
export * from './progress-log.js';
export * from './replica.js';
export { computeBaseHash } from './base-hash.js';
export * from './feature-cache.js';
export { EventFileWriter, encodeEvent, maskedCrc32c, tfRecord, type EventFileWriterOptions } from './tensorboard/event-file.js';
export { TensorBoardLogger, type TensorBoardLoggerOptions } from './tensorboard/tensorboard-logger.js';
export { balancedClassWeights, resolveClassWeights, resolveClassWeightsFromLabelled } from './class-weights.js';
export {
  LearningRateScheduler,
  phaseBaseLearningRate,
  phaseSchedule,
  scheduledLearningRate,
  type LearningRateScheduleKind,
  type LearningRateSchedulerOptions,
} from './lr-schedule.js';
export { ENVELOPE_HEADER_BYTES, ENVELOPE_MAGIC, openCheckpoint, sealCheckpoint, type OpenedCheckpoint } from './checkpoint-envelope.js';
export { RESUME_SAFE_SETTINGS, resumeMismatches, runFingerprint, type ResumePosition, type RunFingerprint } from './run-fingerprint.js';
export {
  computeTreeGradientsOnDevice,
  deviceStepDefault,
  isDeviceStepReplica,
  DEVICE_STEP_DEFAULTS,
  type DeviceGradients,
  type DeviceStepReplica,
} from './device-step.js';
export { DeviceFeatureCache } from './device-feature-cache.js';
export { TransferCounter } from './transfer-counter.js';
export { packBytes, unpackBytes, preprocessOnDevice } from './device-preprocess.js';
export { l2Norm, clipByGlobalNorm, GradientNormGuard, type GradientNormGuardOptions } from './gradient-norm.js';
