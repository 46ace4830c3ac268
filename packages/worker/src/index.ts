export * from './backoff.js';
export * from './connect.js';
export * from './worker.js';
export * from './observer.js';
export * from './backend.js';
export { onParentGone } from './parent-watch.js';
