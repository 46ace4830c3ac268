export * from './peer.js';
export * from './server.js';
export * from './executor.js';
export * from './ledger.js';
export * from './split.js';
export * from './run-coordinator.js';
export * from './console-log.js';
export * from './cluster-flags.js';
