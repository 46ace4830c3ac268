export {
  gradientsReply,
  loadRunDataset,
  ReplicaWorker,
  SampleIndex,
  startWorker,
  WORKER_DEFAULTS,
  type MessageOf,
  type WorkerOptions,
} from './worker.js';
export {
  runUpstream,
  workerLog,
  UPSTREAM_DEFAULTS,
  type JoinFields,
  type MessageHandlers,
  type UpstreamOptions,
  type WorkerExit,
  type WorkerHandle,
} from './upstream.js';
export { ShardedSender, type ShardedSenderOptions } from './sharded-sender.js';
export { startLiveness, LIVENESS_DEFAULTS, type LivenessOptions, type LivenessHandle } from './liveness.js';
export { onParentGone } from './parent-watch.js';
export { ShardLinks, type ShardLinksOptions } from './shard-links.js';
export { WeightsAssembly } from './weights-assembly.js';
export { gradBucket, sendStepReply, type GradientOut } from './gradient-stream.js';
