/** Minimal SVG building blocks for the run charts (rendered to PNG by sharp/librsvg). */

export const FONT = 'DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif';

export function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export function svgDoc(width: number, height: number, body: string): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}">` +
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>${body}</svg>`
  );
}

export function text(
  x: number,
  y: number,
  content: string,
  opts: { size?: number; anchor?: 'start' | 'middle' | 'end'; weight?: 'normal' | 'bold'; fill?: string; rotate?: number } = {},
): string {
  const rot = opts.rotate ? ` transform="rotate(${opts.rotate} ${x} ${y})"` : '';
  return `<text x="${r(x)}" y="${r(y)}" font-size="${opts.size ?? 12}" text-anchor="${opts.anchor ?? 'start'}" font-weight="${opts.weight ?? 'normal'}" fill="${opts.fill ?? '#222'}"${rot}>${esc(content)}</text>`;
}

export function line(x1: number, y1: number, x2: number, y2: number, stroke = '#888', width = 1, dash?: string): string {
  return `<line x1="${r(x1)}" y1="${r(y1)}" x2="${r(x2)}" y2="${r(y2)}" stroke="${stroke}" stroke-width="${width}"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`;
}

export function rect(x: number, y: number, w: number, h: number, fill: string, stroke?: string): string {
  return `<rect x="${r(x)}" y="${r(y)}" width="${r(Math.max(0, w))}" height="${r(Math.max(0, h))}" fill="${fill}"${stroke ? ` stroke="${stroke}"` : ''}/>`;
}

export function polyline(points: Array<[number, number]>, stroke: string, width = 2, dash?: string): string {
  if (points.length === 0) return '';
  const d = points.map(([x, y]) => `${r(x)},${r(y)}`).join(' ');
  return `<polyline points="${d}" fill="none" stroke="${stroke}" stroke-width="${width}" stroke-linejoin="round"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`;
}

export function circle(x: number, y: number, radius: number, fill: string): string {
  return `<circle cx="${r(x)}" cy="${r(y)}" r="${radius}" fill="${fill}"/>`;
}

function r(v: number): string {
  return Number.isFinite(v) ? String(Math.round(v * 10) / 10) : '0';
}

/** About `count` round tick values covering [min, max]. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
  if (max === min) {
    const pad = Math.abs(max) > 0 ? Math.abs(max) * 0.1 : 1;
    min -= pad;
    max += pad;
  }
  const raw = (max - min) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const start = Math.floor(min / step) * step;
  const ticks: number[] = [];
  for (let v = start; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks[ticks.length - 1]! < max) ticks.push(Number((ticks[ticks.length - 1]! + step).toPrecision(12)));
  return ticks;
}

/** A formatter with just enough decimals to tell these (evenly spaced) ticks apart. */
export function tickFormatter(ticks: number[]): (v: number) => string {
  const step = ticks.length > 1 ? Math.abs(ticks[1]! - ticks[0]!) : 0;
  if (!(step > 0) || step >= 1000 || step < 1e-6) return tickLabel;
  let decimals = Math.max(0, -Math.floor(Math.log10(step)));
  // steps like 0.25 or 0.025 need one more
  if (Math.abs(Number(step.toFixed(decimals)) - step) > step * 1e-6) decimals++;
  return (v) => v.toFixed(decimals);
}

export function tickLabel(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1000 || a < 0.01) return v.toExponential(0);
  return Number(v.toPrecision(3)).toString();
}

/** A white-to-blue colour for a value in [0, 1]. */
export function heat(f: number): string {
  const t = Math.min(1, Math.max(0, Number.isFinite(f) ? f : 0));
  const from = [247, 251, 255];
  const to = [8, 48, 107];
  const c = from.map((a, i) => Math.round(a + (to[i]! - a) * t));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}
