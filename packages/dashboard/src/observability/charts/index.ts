export { CHART_FILES, type EpochPoint, type ReportInput, type RunChartsInput, type RunChartsOptions, writeRunCharts } from './run-charts.js';
export { writeRunChartsFromDir } from './run-charts.js';
export { formatRunSummary, type SummaryInput } from './summary.js';
export { lineChartSvg, heatmapSvg, barChartSvg, type LineChartSpec, type HeatmapSpec, type BarChartSpec, type Series } from './draw.js';
export { niceTicks, tickFormatter } from './svg.js';
