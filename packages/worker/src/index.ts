export * from './backoff.js';
export * from './connect.js';
export * from './worker.js';
export * from './observer.js';
export * from './backend.js';
export { maxPayloadOf, setMaxPayload } from './payload-limit.js';
