import { circle, heat, line, niceTicks, polyline, rect, svgDoc, text, tickFormatter } from './svg.js';

export interface Series {
  name: string;
  color: string;
  /** Dashed stroke (e.g. "6 4"). Default: solid. */
  dash?: string;
  points: Array<[number, number]>;
}

export interface LineChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Vertical markers (e.g. the start of fine-tuning). */
  markers?: Array<{ x: number; label: string }>;
  /** Fixed y range (e.g. [0, 1] for accuracy). Default: from the data. */
  yRange?: [number, number];
  /** Format of y tick labels. Default: just enough decimals for the tick step. */
  yFormat?: (v: number) => string;
  width?: number;
  height?: number;
}

const M = { left: 70, right: 170, top: 50, bottom: 60 };

/** A line chart with axes, grid, markers and a legend, as SVG. */
export function lineChartSvg(spec: LineChartSpec): string {
  const width = spec.width ?? 900;
  const height = spec.height ?? 500;
  const pw = width - M.left - M.right;
  const ph = height - M.top - M.bottom;
  const all = spec.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const xs = all.map(([x]) => x);
  const ys = all.map(([, y]) => y);
  const xMin = xs.length ? Math.min(...xs) : 0;
  const xMax = xs.length ? Math.max(...xs) : 1;
  const yT = spec.yRange ? niceTicks(spec.yRange[0], spec.yRange[1]) : niceTicks(ys.length ? Math.min(...ys) : 0, ys.length ? Math.max(...ys) : 1);
  const y0 = yT[0]!;
  const y1 = yT[yT.length - 1]!;
  const xSpan = xMax - xMin || 1;
  const sx = (x: number): number => M.left + (xs.length <= 1 ? pw / 2 : ((x - xMin) / xSpan) * pw);
  const sy = (y: number): number => M.top + ph - ((y - y0) / (y1 - y0 || 1)) * ph;
  const fmt = spec.yFormat ?? tickFormatter(yT);
  let body = text(width / 2 - M.right / 2 + M.left / 2, 30, spec.title, { size: 18, anchor: 'middle', weight: 'bold' });
  for (const t of yT) {
    body += line(M.left, sy(t), M.left + pw, sy(t), '#e5e5e5');
    body += text(M.left - 8, sy(t) + 4, fmt(t), { size: 12, anchor: 'end', fill: '#444' });
  }
  const xTicks = xs.length ? niceTicks(xMin, xMax, Math.min(10, Math.max(1, xMax - xMin))).filter((t) => t >= xMin && t <= xMax && Number.isInteger(t)) : [];
  for (const t of xTicks) {
    body += line(sx(t), M.top + ph, sx(t), M.top + ph + 5, '#444');
    body += text(sx(t), M.top + ph + 20, String(t), { size: 12, anchor: 'middle', fill: '#444' });
  }
  body += line(M.left, M.top, M.left, M.top + ph, '#444');
  body += line(M.left, M.top + ph, M.left + pw, M.top + ph, '#444');
  body += text(M.left + pw / 2, height - 15, spec.xLabel, { size: 13, anchor: 'middle' });
  body += text(20, M.top + ph / 2, spec.yLabel, { size: 13, anchor: 'middle', rotate: -90 });
  for (const m of spec.markers ?? []) {
    body += line(sx(m.x), M.top, sx(m.x), M.top + ph, '#aa3377', 1.5, '4 4');
    body += text(sx(m.x) + 4, M.top + 14, m.label, { size: 12, fill: '#aa3377' });
  }
  spec.series.forEach((s, i) => {
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)).map(([x, y]): [number, number] => [sx(x), sy(y)]);
    body += polyline(pts, s.color, 2.5, s.dash);
    for (const [x, y] of pts) body += circle(x, y, 3.5, s.color);
    const ly = M.top + 10 + i * 24;
    const lx = M.left + pw + 20;
    body += line(lx, ly, lx + 28, ly, s.color, 3, s.dash);
    body += text(lx + 36, ly + 4, s.name, { size: 13 });
  });
  return svgDoc(width, height, body);
}

export interface HeatmapSpec {
  title: string;
  /** Row labels (true classes). */
  rows: string[];
  /** Column labels (predicted classes). */
  cols: string[];
  /** counts[row][col]. */
  counts: number[][];
}

/** The confusion matrix as a heatmap: colour by the row-normalised share, the count printed in each cell. */
export function heatmapSvg(spec: HeatmapSpec): string {
  const n = spec.rows.length;
  const m = spec.cols.length;
  const labelW = Math.min(160, 20 + 8 * Math.max(4, ...spec.rows.map((r) => r.length)));
  const cell = Math.max(36, Math.min(90, Math.floor(600 / Math.max(n, m, 1))));
  const top = 70;
  const left = labelW + 40;
  const width = left + m * cell + 40;
  const height = Math.round(top + n * cell + labelW * 0.75 + 24);
  let body = text(width / 2, 30, spec.title, { size: 18, anchor: 'middle', weight: 'bold' });
  body += text(left + (m * cell) / 2, 52, 'predicted', { size: 13, anchor: 'middle', fill: '#444' });
  body += text(16, top + (n * cell) / 2, 'true', { size: 13, anchor: 'middle', rotate: -90, fill: '#444' });
  for (let i = 0; i < n; i++) {
    const row = spec.counts[i] ?? [];
    const total = row.reduce((a, b) => a + b, 0);
    body += text(left - 8, top + i * cell + cell / 2 + 4, spec.rows[i] ?? '', { size: 12, anchor: 'end' });
    for (let j = 0; j < m; j++) {
      const v = row[j] ?? 0;
      const f = total > 0 ? v / total : 0;
      body += rect(left + j * cell, top + i * cell, cell, cell, heat(f), '#ffffff');
      body += text(left + j * cell + cell / 2, top + i * cell + cell / 2 + 5, String(v), {
        size: Math.min(16, Math.floor(cell / 3)),
        anchor: 'middle',
        fill: f > 0.5 ? '#ffffff' : '#222222',
        weight: i === j ? 'bold' : 'normal',
      });
    }
  }
  for (let j = 0; j < m; j++) {
    const x = left + j * cell + cell / 2;
    const y = top + n * cell + 12;
    body += text(x, y, spec.cols[j] ?? '', { size: 12, anchor: 'end', rotate: -45 });
  }
  return svgDoc(width, height, body);
}

export interface BarChartSpec {
  title: string;
  categories: string[];
  groups: Array<{ name: string; color: string; values: number[] }>;
  /** y range. Default [0, 1]. */
  yRange?: [number, number];
  yFormat?: (v: number) => string;
}

/** Grouped bars (e.g. precision and recall per class), values printed above the bars. */
export function barChartSvg(spec: BarChartSpec): string {
  const k = spec.categories.length;
  const g = spec.groups.length;
  const width = Math.max(600, M.left + 40 + k * (g * 30 + 30) + M.right);
  const height = 500;
  const pw = width - M.left - M.right;
  const ph = height - M.top - M.bottom - 30;
  const [lo, hi] = spec.yRange ?? [0, 1];
  const ticks = niceTicks(lo, hi);
  const y0 = ticks[0]!;
  const y1 = ticks[ticks.length - 1]!;
  const sy = (v: number): number => M.top + ph - ((v - y0) / (y1 - y0 || 1)) * ph;
  const fmt = spec.yFormat ?? tickFormatter(ticks);
  let body = text(width / 2 - M.right / 2 + M.left / 2, 30, spec.title, { size: 18, anchor: 'middle', weight: 'bold' });
  for (const t of ticks) {
    body += line(M.left, sy(t), M.left + pw, sy(t), '#e5e5e5');
    body += text(M.left - 8, sy(t) + 4, fmt(t), { size: 12, anchor: 'end', fill: '#444' });
  }
  body += line(M.left, M.top, M.left, M.top + ph, '#444');
  body += line(M.left, M.top + ph, M.left + pw, M.top + ph, '#444');
  const slot = pw / Math.max(1, k);
  const barW = Math.min(40, (slot * 0.8) / Math.max(1, g));
  spec.categories.forEach((cat, i) => {
    const cx = M.left + slot * i + slot / 2;
    spec.groups.forEach((grp, j) => {
      const v = grp.values[i] ?? 0;
      const x = cx - (g * barW) / 2 + j * barW;
      const vv = Math.min(y1, Math.max(y0, Number.isFinite(v) ? v : 0));
      body += rect(x + 1, sy(vv), barW - 2, M.top + ph - sy(vv), grp.color);
      body += text(x + barW / 2, sy(vv) - 4, fmt(v), { size: 10, anchor: 'middle', fill: '#333' });
    });
    body += text(cx, M.top + ph + 14, cat, { size: 12, anchor: 'end', rotate: -30 });
  });
  spec.groups.forEach((grp, j) => {
    const ly = M.top + 10 + j * 24;
    const lx = M.left + pw + 20;
    body += rect(lx, ly - 8, 24, 14, grp.color);
    body += text(lx + 32, ly + 4, grp.name, { size: 13 });
  });
  return svgDoc(width, height, body);
}
