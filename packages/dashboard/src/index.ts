// Terminal dashboard: a pure reducer over RunEvents, a store, and the ink view.
export * from './run-state.js';
export * from './selectors.js';
export * from './format.js';
export * from './store.js';
export { DashboardApp, fitRows, type DashboardAppProps } from './view.js';
export { startDashboard, type StartDashboardOptions, type DashboardHandle } from './start.js';
export { ReplayFilter } from './replay-filter.js';
// Observability: plain and JSON logs, Prometheus metrics and end-of-run charts, all fed by the RunEvent stream.
export * from './observability/index.js';
