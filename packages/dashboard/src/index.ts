// Terminal dashboard: a pure reducer over RunEvents, a store, and the ink view.
export { type DashboardLimits, dashboardReducer, type DashboardState, initialDashboardState, type PhaseState, type RecentEvent } from './run-state.js';
export { type LocalWorkerRow, type TaskProgress, type WorkerRow } from './run-state.js';
export { activeTasks, clusterThroughput, connectedWorkers, percentile, phaseEtaMs, type PhaseProgress, phaseProgress, stepTimeP50 } from './selectors.js';
export { stepTimeP99, taskEtaMs } from './selectors.js';
export { fit, formatBytes, formatClock, formatDuration, formatNumber, formatPercent, formatRate, progressBar, sparkline } from './format.js';
export { DashboardStore, type DashboardStoreOptions } from './store.js';
export { DashboardApp, fitRows, type DashboardAppProps } from './view.js';
export { startDashboard, type StartDashboardOptions, type DashboardHandle } from './start.js';
export { ReplayFilter } from './replay-filter.js';
// Observability: plain and JSON logs, Prometheus metrics and end-of-run charts, all fed by the RunEvent stream.
export { attachJsonLog, attachPlainLogger, type BarChartSpec, barChartSvg, CHART_FILES, createRunMetrics, type EpochPoint } from './observability/index.js';
export { eventLevel, eventMessage, formatRunSummary, formatStepLine, type HeatmapSpec, heatmapSvg, type JsonLogHandle } from './observability/index.js';
export { type JsonLogOptions, type LineChartSpec, lineChartSvg, type MetricsServer, type MetricsServerOptions, niceTicks } from './observability/index.js';
export { OBSERVABILITY_PATHS, type ObservabilityHandler, observabilityHandler, type PlainLoggerHandle } from './observability/index.js';
export { type PlainLoggerOptions, type ReportInput, RUN_LOG_FILE, type RunChartsInput, type RunChartsOptions, RunMetrics } from './observability/index.js';
export { type RunMetricsOptions, type Series, startMetricsServer, type SummaryInput, type TaskProgressOptions } from './observability/index.js';
export { TaskProgressReporter, tickFormatter, writeRunCharts, writeRunChartsFromDir } from './observability/index.js';
