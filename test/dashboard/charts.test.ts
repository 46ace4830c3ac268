import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import {
  CHART_FILES,
  formatRunSummary,
  niceTicks,
  tickFormatter,
  writeRunCharts,
  writeRunChartsFromDir,
  type EpochPoint,
  type ReportInput,
} from '../../packages/dashboard/src/observability/index.js';

const dirs: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'dptrain-charts-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const classes = ['buildings', 'forest', 'glacier', 'mountain', 'sea', 'street'];
const epochs: EpochPoint[] = [
  ...[0, 1, 2, 3].map((e) => ({
    phase: 'head' as const,
    epoch: e,
    trainLoss: 1.6 - 0.3 * e,
    trainAccuracy: 0.4 + 0.1 * e,
    valLoss: 1.5 - 0.25 * e,
    valAccuracy: 0.45 + 0.09 * e,
  })),
  ...[0, 1].map((e) => ({
    phase: 'fine_tune' as const,
    epoch: e,
    trainLoss: 0.5 - 0.1 * e,
    trainAccuracy: 0.82 + 0.03 * e,
    valLoss: 0.6 - 0.05 * e,
    valAccuracy: 0.8 + 0.02 * e,
  })),
];
const confusion = classes.map((_, i) => classes.map((__, j) => (i === j ? 40 + i : (i + j) % 3)));
const report: ReportInput = {
  classNames: classes,
  validation: {
    loss: 0.55,
    accuracy: 0.84,
    confusion,
    perClass: classes.map((name, k) => ({ name, precision: 0.7 + 0.04 * k, recall: 0.9 - 0.03 * k })),
  },
};

/** Mean and variance of all channels, and the share of non-white pixels. */
async function pixelStats(file: string): Promise<{ width: number; height: number; variance: number; inked: number; blue: number }> {
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  let sum = 0;
  let sq = 0;
  let inked = 0;
  let blue = 0;
  const px = info.width * info.height;
  for (let i = 0; i < data.length; i += info.channels) {
    const r = data[i]!;
    const g = data[i + 1]!;
    const b = data[i + 2]!;
    const m = (r + g + b) / 3;
    sum += m;
    sq += m * m;
    if (m < 240) inked++;
    if (b > 90 && b > r + 40) blue++;
  }
  const mean = sum / px;
  return { width: info.width, height: info.height, variance: sq / px - mean * mean, inked: inked / px, blue: blue / px };
}

describe('end-of-run charts', () => {
  it('writes four non-blank PNGs of sensible size', async () => {
    const dir = tmp();
    const files = await writeRunCharts(dir, { epochs, report });
    expect(files.map((f) => basename(f)).sort()).toEqual(Object.values(CHART_FILES).sort());
    for (const f of files) {
      const size = statSync(f).size;
      expect(size, f).toBeGreaterThan(5_000);
      expect(size, f).toBeLessThan(2_000_000);
      const meta = await sharp(f).metadata();
      expect(meta.format).toBe('png');
      const s = await pixelStats(f);
      expect(s.width).toBeGreaterThanOrEqual(500);
      expect(s.height).toBeGreaterThanOrEqual(400);
      // not blank: real contrast and a fair amount of ink, but not a solid fill
      expect(s.variance, f).toBeGreaterThan(100);
      expect(s.inked, f).toBeGreaterThan(0.01);
      expect(s.inked, f).toBeLessThan(0.9);
    }
    // the heatmap's diagonal is dark blue: many strongly blue pixels
    const heat = await pixelStats(join(dir, CHART_FILES.confusion));
    expect(heat.blue).toBeGreaterThan(0.05);
  });

  it('draws the data: a chart of other numbers differs', async () => {
    const a = tmp();
    const b = tmp();
    await writeRunCharts(a, { epochs });
    await writeRunCharts(b, { epochs: epochs.map((e) => ({ ...e, valAccuracy: 1 - e.valAccuracy })) });
    const pa = await sharp(join(a, CHART_FILES.accuracy)).raw().toBuffer();
    const pb = await sharp(join(b, CHART_FILES.accuracy)).raw().toBuffer();
    let diff = 0;
    for (let i = 0; i < pa.length; i++) if (pa[i] !== pb[i]) diff++;
    expect(diff).toBeGreaterThan(1000);
    // the loss chart did not change
    expect(Buffer.compare(await sharp(join(a, CHART_FILES.loss)).raw().toBuffer(), await sharp(join(b, CHART_FILES.loss)).raw().toBuffer())).toBe(0);
  });

  it('reads report.json, or metrics.jsonl without a report', async () => {
    const a = tmp();
    writeFileSync(join(a, 'report.json'), JSON.stringify({ ...report, history: epochs }));
    expect((await writeRunChartsFromDir(a)).map((f) => basename(f)).sort()).toEqual(Object.values(CHART_FILES).sort());
    const b = tmp();
    writeFileSync(join(b, 'metrics.jsonl'), epochs.map((e) => JSON.stringify(e)).join('\n') + '\n');
    expect((await writeRunChartsFromDir(b)).map((f) => basename(f)).sort()).toEqual([CHART_FILES.accuracy, CHART_FILES.loss].sort());
    const c = tmp();
    writeFileSync(join(c, 'metrics.jsonl'), '{"phase":"head"\n');
    await expect(writeRunChartsFromDir(c)).rejects.toMatchObject({ code: 'E_CONFIG', message: expect.stringContaining('metrics.jsonl:1') });
  });

  it('rejects a confusion matrix of the wrong shape', async () => {
    await expect(writeRunCharts(tmp(), { epochs, report: { ...report, classNames: classes.slice(0, 5) } })).rejects.toMatchObject({ code: 'E_CONFIG' });
  });

  it('labels close ticks apart', () => {
    const ticks = niceTicks(1.0308, 1.0399);
    const labels = ticks.map(tickFormatter(ticks));
    expect(new Set(labels).size).toBe(ticks.length);
    expect(labels[0]).toBe('1.030');
    expect(niceTicks(0, 1).map(tickFormatter(niceTicks(0, 1)))).toEqual(['0.0', '0.2', '0.4', '0.6', '0.8', '1.0']);
  });

  it('formats a short terminal summary', () => {
    const text = formatRunSummary(
      { ...report, runId: 'r1', workers: 2, steps: 120, history: epochs, timingsMs: { total: 65_000, evaluate: 2000 }, submission: '/tmp/r1/submission.csv' },
      ['/tmp/r1/chart-loss.png'],
    );
    expect(text).toContain('run r1, 2 worker(s), 120 steps, in 1m05s');
    expect(text).toContain('validation: accuracy 84.0%, loss 0.5500');
    expect(text).toMatch(/street\s+90\.0%\s+75\.0%/);
    expect(text).toContain('best epoch: fine-tune 2, val accuracy 82.0% (6 epoch(s) in all)');
    expect(text).toContain('submission: /tmp/r1/submission.csv');
  });
});
