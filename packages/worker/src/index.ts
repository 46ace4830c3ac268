export * from './worker.js';
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
export * from './backend.js';
export { startLiveness, LIVENESS_DEFAULTS, type LivenessOptions, type LivenessHandle } from './liveness.js';
export { onParentGone } from './parent-watch.js';
export { ShardLinks, type ShardLinksOptions } from './shard-links.js';
