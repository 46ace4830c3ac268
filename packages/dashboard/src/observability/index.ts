// Plain and JSON logs, Prometheus metrics and end-of-run charts, all fed by the RunEvent stream.
export { attachPlainLogger, formatStepLine, type PlainLoggerHandle, type PlainLoggerOptions } from './plain-logger.js';
export { type TaskProgressOptions, TaskProgressReporter } from './task-progress.js';
export { attachJsonLog, eventLevel, eventMessage, type JsonLogHandle, type JsonLogOptions, RUN_LOG_FILE } from './json-log.js';
export { createRunMetrics, RunMetrics, type RunMetricsOptions } from './metrics.js';
export { type MetricsServer, type MetricsServerOptions, OBSERVABILITY_PATHS, type ObservabilityHandler, observabilityHandler } from './http.js';
export { startMetricsServer } from './http.js';
export { type BarChartSpec, barChartSvg, CHART_FILES, type EpochPoint, formatRunSummary, type HeatmapSpec, heatmapSvg } from './charts/index.js';
export { type LineChartSpec, lineChartSvg, niceTicks, type ReportInput, type RunChartsInput, type RunChartsOptions, type Series } from './charts/index.js';
export { type SummaryInput, tickFormatter, writeRunCharts, writeRunChartsFromDir } from './charts/index.js';
