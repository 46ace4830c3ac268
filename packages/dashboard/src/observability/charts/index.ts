export * from './run-charts.js';
export * from './summary.js';
export { lineChartSvg, heatmapSvg, barChartSvg, type LineChartSpec, type HeatmapSpec, type BarChartSpec, type Series } from './draw.js';
export { niceTicks, tickFormatter } from './svg.js';
