/** Small text formatters shared by the ink view and the plain logger. */

/** "1h02m", "3m05s", "12s", "850ms". */
export function formatDuration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '--';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const total = Math.round(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m${String(s).padStart(2, '0')}s`;
  return `${s}s`;
}

/** "512B", "1.5KB", "12.3MB", "1.02GB". */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 1024) return `${Math.round(n)}B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)}${units[i]}`;
}

/** Numbers with a sensible number of digits ("123", "12.3", "1.23", "0.0123"). */
export function formatNumber(n: number | undefined, digits = 3): string {
  if (n === undefined || !Number.isFinite(n)) return '--';
  if (n === 0) return '0';
  const a = Math.abs(n);
  if (a >= 1000) return n.toFixed(0);
  if (a < 1e-3) return n.toExponential(1);
  return Number(n.toPrecision(digits)).toString();
}

/** Learning rates: "1e-3", "1e-5", "3.2e-4". */
export function formatRate(lr: number | undefined): string {
  if (lr === undefined || !Number.isFinite(lr)) return '--';
  const [m, e] = lr.toExponential(1).split('e');
  const mant = m!.endsWith('.0') ? m!.slice(0, -2) : m!;
  return `${mant}e${Number(e)}`;
}

export function formatPercent(f: number | undefined, digits = 1): string {
  if (f === undefined || !Number.isFinite(f)) return '--';
  return `${(f * 100).toFixed(digits)}%`;
}

/** "[#####.....]"-style bar with unicode blocks, `width` cells wide. */
export function progressBar(fraction: number, width: number): string {
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const cells = f * width;
  const full = Math.floor(cells);
  const partials = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
  const part = full < width ? (partials[Math.floor((cells - full) * 8)] ?? '') : '';
  return '█'.repeat(full) + part + '░'.repeat(Math.max(0, width - full - (part ? 1 : 0)));
}

const SPARKS = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/** A sparkline of the last `width` values (bucket means when there are more), scaled to the values' range. */
export function sparkline(values: readonly number[], width: number): string {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0 || width <= 0) return '';
  let points: number[];
  if (finite.length <= width) {
    points = finite;
  } else {
    points = [];
    for (let i = 0; i < width; i++) {
      const a = Math.floor((i * finite.length) / width);
      const b = Math.max(a + 1, Math.floor(((i + 1) * finite.length) / width));
      const slice = finite.slice(a, b);
      points.push(slice.reduce((x, y) => x + y, 0) / slice.length);
    }
  }
  const min = Math.min(...points);
  const max = Math.max(...points);
  const span = max - min;
  return points.map((v) => SPARKS[span > 0 ? Math.min(7, Math.floor(((v - min) / span) * 8)) : 3]).join('');
}

/** "12:03:04" in local time. */
export function formatClock(time: number): string {
  const d = new Date(time);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((x) => String(x).padStart(2, '0')).join(':');
}

/** Pads or cuts to exactly `width` characters. */
export function fit(text: string, width: number, align: 'left' | 'right' = 'left'): string {
  if (text.length > width) return width > 1 ? `${text.slice(0, width - 1)}…` : text.slice(0, width);
  return align === 'left' ? text.padEnd(width) : text.padStart(width);
}
