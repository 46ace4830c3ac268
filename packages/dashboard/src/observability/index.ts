// Plain and JSON logs, Prometheus metrics and end-of-run charts, all fed by the RunEvent stream.
export * from './plain-logger.js';
export * from './task-progress.js';
export * from './json-log.js';
export * from './metrics.js';
export * from './http.js';
export * from './charts/index.js';
