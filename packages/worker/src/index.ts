export * from './worker.js';
export * from './backend.js';
export { startLiveness, LIVENESS_DEFAULTS, type LivenessOptions, type LivenessHandle } from './liveness.js';
export { onParentGone } from './parent-watch.js';
