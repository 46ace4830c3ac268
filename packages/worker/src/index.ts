export { type MessageOf, startWorker, type WorkerExit, type WorkerHandle, type WorkerOptions } from './worker.js';
export { startLiveness, LIVENESS_DEFAULTS, type LivenessOptions, type LivenessHandle } from './liveness.js';
export { onParentGone } from './parent-watch.js';
