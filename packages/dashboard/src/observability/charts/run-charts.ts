import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { DptrainError, type EpochRecord } from '@dptrain/core';
import { barChartSvg, heatmapSvg, lineChartSvg } from './draw.js';

/** One epoch's figures that the charts draw: the fields they use of a metrics.jsonl line (core's EpochRecord, also `report.history`'s entries). */
export type EpochPoint = Pick<EpochRecord, 'phase' | 'epoch' | 'trainLoss' | 'trainAccuracy' | 'valLoss' | 'valAccuracy'>;

/** The parts of report.json the charts use. */
export interface ReportInput {
  classNames: string[];
  validation: {
    loss: number;
    accuracy: number;
    /** confusion[true][predicted]. */
    confusion: number[][];
    perClass: Array<{ name: string; precision: number; recall: number; f1?: number; support?: number }>;
  } | null;
}

export interface RunChartsInput {
  /** Epoch history in order (phase 1 then phase 2). */
  epochs: EpochPoint[];
  /** Final evaluation; without it, no confusion matrix or per-class chart. */
  report?: ReportInput;
}

export interface RunChartsOptions {
  /** Pixel density of the PNGs (SVG user units per inch). Default 96 (1 SVG unit = 1 pixel). */
  density?: number;
}

/** File names written by `writeRunCharts`, relative to the run directory. */
export const CHART_FILES = {
  loss: 'chart-loss.png',
  accuracy: 'chart-accuracy.png',
  confusion: 'chart-confusion-matrix.png',
  perClass: 'chart-per-class.png',
} as const;

const COLORS = { train: '#1f77b4', val: '#d62728', precision: '#2c7fb8', recall: '#f28e2b' };

async function png(svg: string, file: string, density: number): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await sharp(Buffer.from(svg), { density }).png({ compressionLevel: 9 }).toFile(tmp);
  await fs.rename(tmp, file);
}

/** Epochs numbered 1..N across both phases, and where fine-tuning starts. */
function epochAxis(epochs: EpochPoint[]): { xs: number[]; markers: Array<{ x: number; label: string }> } {
  const xs = epochs.map((_, i) => i + 1);
  const markers: Array<{ x: number; label: string }> = [];
  const ft = epochs.findIndex((e) => e.phase === 'fine_tune');
  if (ft > 0) markers.push({ x: ft + 0.5, label: 'fine-tune' });
  return { xs, markers };
}

/**
 * Draws the end-of-run charts as SVG and renders them to PNG with sharp, in `runDir`:
 * loss and accuracy per epoch (train and validation), the confusion matrix as a heatmap, and per-class
 * precision and recall. Returns the paths written (charts without data are skipped).
 */
export async function writeRunCharts(runDir: string, input: RunChartsInput, options: RunChartsOptions = {}): Promise<string[]> {
  const density = options.density ?? 96;
  await fs.mkdir(runDir, { recursive: true });
  const written: string[] = [];
  const out = (name: string): string => path.join(runDir, name);

  if (input.epochs.length > 0) {
    const { xs, markers } = epochAxis(input.epochs);
    const pts = (f: (e: EpochPoint) => number): Array<[number, number]> => input.epochs.map((e, i) => [xs[i]!, f(e)]);
    await png(
      lineChartSvg({
        title: 'Loss per epoch',
        xLabel: 'epoch',
        yLabel: 'cross-entropy loss',
        series: [
          { name: 'train', color: COLORS.train, points: pts((e) => e.trainLoss) },
          { name: 'validation', color: COLORS.val, dash: '7 4', points: pts((e) => e.valLoss) },
        ],
        markers,
      }),
      out(CHART_FILES.loss),
      density,
    );
    written.push(out(CHART_FILES.loss));
    await png(
      lineChartSvg({
        title: 'Accuracy per epoch',
        xLabel: 'epoch',
        yLabel: 'accuracy',
        series: [
          { name: 'train', color: COLORS.train, points: pts((e) => e.trainAccuracy) },
          { name: 'validation', color: COLORS.val, dash: '7 4', points: pts((e) => e.valAccuracy) },
        ],
        markers,
        yRange: [0, 1],
        yFormat: (v) => `${Math.round(v * 100)}%`,
      }),
      out(CHART_FILES.accuracy),
      density,
    );
    written.push(out(CHART_FILES.accuracy));
  }

  const v = input.report?.validation;
  if (v && input.report) {
    const classes = input.report.classNames;
    if (v.confusion.length !== classes.length || v.confusion.some((row) => row.length !== classes.length)) {
      throw new DptrainError('E_CONFIG', `charts: confusion matrix is not ${classes.length} x ${classes.length} (classes ${classes.join(', ')})`);
    }
    await png(
      heatmapSvg({
        title: `Confusion matrix (validation, accuracy ${(v.accuracy * 100).toFixed(1)}%)`,
        rows: classes,
        cols: classes,
        counts: v.confusion,
      }),
      out(CHART_FILES.confusion),
      density,
    );
    written.push(out(CHART_FILES.confusion));
    const byName = new Map(v.perClass.map((c) => [c.name, c]));
    await png(
      barChartSvg({
        title: 'Per-class precision and recall (validation)',
        categories: classes,
        groups: [
          { name: 'precision', color: COLORS.precision, values: classes.map((c) => byName.get(c)?.precision ?? 0) },
          { name: 'recall', color: COLORS.recall, values: classes.map((c) => byName.get(c)?.recall ?? 0) },
        ],
        yFormat: (x) => x.toFixed(2),
      }),
      out(CHART_FILES.perClass),
      density,
    );
    written.push(out(CHART_FILES.perClass));
  }
  return written;
}

/**
 * Reads `<runDir>/report.json` (history + validation), or `<runDir>/metrics.jsonl` when there is no report,
 * and writes the charts.
 */
export async function writeRunChartsFromDir(runDir: string, options: RunChartsOptions = {}): Promise<string[]> {
  const reportFile = path.join(runDir, 'report.json');
  let report: (ReportInput & { history?: EpochPoint[] }) | undefined;
  try {
    report = JSON.parse(await fs.readFile(reportFile, 'utf8')) as ReportInput & { history?: EpochPoint[] };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new DptrainError('E_CONFIG', `${reportFile}: cannot read the run report: ${(err as Error).message}`, undefined, { cause: err });
    }
  }
  let epochs = report?.history;
  if (!epochs) {
    const metricsFile = path.join(runDir, 'metrics.jsonl');
    let textContent = '';
    try {
      textContent = await fs.readFile(metricsFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    epochs = textContent
      .split('\n')
      .filter((l) => l.trim())
      .map((l, i) => {
        try {
          return JSON.parse(l) as EpochPoint;
        } catch {
          throw new DptrainError('E_CONFIG', `${metricsFile}:${i + 1}: not a JSON line`);
        }
      });
  }
  return writeRunCharts(runDir, { epochs, ...(report ? { report } : {}) }, options);
}
