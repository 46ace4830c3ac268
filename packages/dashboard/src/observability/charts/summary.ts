import { formatDuration } from '../../format.js';
import type { EpochPoint, ReportInput } from './run-charts.js';

/** The parts of report.json the terminal summary shows (all but classNames/validation optional). */
export interface SummaryInput extends ReportInput {
  runId?: string;
  runDir?: string;
  workers?: number;
  backend?: string;
  device?: string;
  steps?: number;
  samples?: { train: number; validation: number; test: number; dropped?: number };
  history?: EpochPoint[];
  timingsMs?: Record<string, number>;
  submission?: string | null;
}

const pct = (x: number): string => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : 'n/a');

/** A short end-of-run summary for the terminal: accuracy, loss, per-class P/R, timings, files. */
export function formatRunSummary(r: SummaryInput, charts: string[] = []): string {
  const lines: string[] = [];
  const head = [`run ${r.runId ?? '?'}`];
  if (r.backend) head.push(`${r.backend}${r.device ? ` (${r.device})` : ''}`);
  if (r.workers !== undefined) head.push(`${r.workers} worker(s)`);
  if (r.steps !== undefined) head.push(`${r.steps} steps`);
  if (r.timingsMs?.total !== undefined) head.push(`in ${formatDuration(r.timingsMs.total)}`);
  lines.push(head.join(', '));
  if (r.samples)
    lines.push(
      `samples: ${r.samples.train} train, ${r.samples.validation} validation, ${r.samples.test} test${r.samples.dropped ? `, ${r.samples.dropped} dropped` : ''}`,
    );
  const v = r.validation;
  if (v) {
    lines.push(`validation: accuracy ${pct(v.accuracy)}, loss ${Number.isFinite(v.loss) ? v.loss.toFixed(4) : 'n/a'}`);
    const w = Math.max(5, ...v.perClass.map((c) => c.name.length));
    lines.push(`  ${'class'.padEnd(w)}  precision  recall`);
    for (const c of v.perClass) lines.push(`  ${c.name.padEnd(w)}  ${pct(c.precision).padStart(9)}  ${pct(c.recall).padStart(6)}`);
  }
  const h = r.history ?? [];
  if (h.length > 0) {
    const best = h.reduce((a, b) => (b.valAccuracy > a.valAccuracy ? b : a));
    lines.push(
      `best epoch: ${best.phase === 'head' ? 'head' : 'fine-tune'} ${best.epoch + 1}, val accuracy ${pct(best.valAccuracy)} (${h.length} epoch(s) in all)`,
    );
  }
  if (r.timingsMs) {
    const parts = Object.entries(r.timingsMs)
      .filter(([k]) => k !== 'total')
      .map(([k, ms]) => `${k} ${formatDuration(ms)}`);
    if (parts.length) lines.push(`time: ${parts.join(', ')}`);
  }
  if (r.submission) lines.push(`submission: ${r.submission}`);
  if (charts.length) lines.push('charts:', ...charts.map((c) => `  ${c}`));
  return lines.join('\n');
}
