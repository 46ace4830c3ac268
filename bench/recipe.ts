// Wall time of the whole two-phase recipe (`dptrain train`: validate, head epochs, fine-tune epochs, evaluate,
// predict the test set) with and without the frozen-feature cache, on the real scene photos (all of them).
// With the cache the whole recipe runs (measured). Without it every epoch costs the same (the frozen base runs on
// every image every epoch), and the 10 + 5 epochs take hours on 2 cores, so by default that run does 1 + 1 epochs
// on the same data and the remaining epochs are added at their measured per-epoch cost (ESTIMATED, and said so);
// `uncachedEpochs` equal to `epochs` measures it whole.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { scoreSubmission } from '@dptrain/core';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');

export interface RecipeBenchOptions {
  /** Backend for `dptrain train`. */
  backend: string;
  /** Data directory. Default /work/shared/data/scenes ($DPTRAIN_SCENES). */
  dataDir?: string;
  /** Use a stratified subset of this many labelled images (the test set cut in proportion). Default: all. */
  subset?: number;
  /** Phase 1 / phase 2 epochs of the recipe. Default 10 / 5 (the recipe's defaults). */
  epochs?: [number, number];
  /** Epochs the uncached run really does (the rest are added at its per-epoch cost). Default [1, 1]. */
  uncachedEpochs?: [number, number];
  /** 2 + 1 epochs on a 24-image subset (a smoke run). */
  quick?: boolean;
  log?: (message: string) => void;
}

export interface RecipeRun {
  cache: boolean;
  /** Epochs this run did (phase 1, phase 2). */
  epochs: [number, number];
  /** Measured wall time of `dptrain train` (process start to exit), s. */
  measured_s: number;
  /** The run's own phase timings (report.json timingsMs), s. */
  phases_s?: Record<string, number>;
  /** Mean epoch wall time per phase (metrics.jsonl epochMs), s. */
  epoch_s?: { head?: number; fine_tune?: number };
  /** Wall time of the recipe's full epoch count: measured_s when the run did them all, else ESTIMATED. */
  recipe_s: number;
  estimated: boolean;
  /** Test accuracy of the run's submission.csv when the data has test_labels.csv. */
  test_accuracy?: number;
}

export interface RecipeBenchResult {
  backend: string;
  data: { dir: string; labelled: number; test: number };
  epochs: [number, number];
  runs: RecipeRun[];
  /** Uncached / cached recipe wall time. */
  cache_speedup: number;
  note: string;
}

function makeSubset(dataDir: string, labelled: number): { dir: string; labelled: number; test: number } {
  const train = readFileSync(path.join(dataDir, 'train.csv'), 'utf8').trim().split('\n');
  const test = readFileSync(path.join(dataDir, 'test.csv'), 'utf8').trim().split('\n');
  const allLabelled = train.length - 1;
  const allTest = test.length - 1;
  const n = Math.min(labelled, allLabelled);
  const nt = Math.max(1, Math.round((allTest * n) / allLabelled));
  const every = <T>(rows: T[], k: number) => rows.filter((_, i) => i % Math.max(1, Math.floor(rows.length / k)) === 0).slice(0, k);
  // Stratified: the same number of rows from each label (in file order), so every class is present.
  const byLabel = new Map<string, string[]>();
  for (const row of train.slice(1)) {
    const label = row.split(',')[1]!.trim();
    byLabel.set(label, [...(byLabel.get(label) ?? []), row]);
  }
  const perClass = Math.max(1, Math.floor(n / byLabel.size));
  const trainRows = [...byLabel.values()].flatMap((rows) => every(rows, perClass));
  const testRows = every(test.slice(1), nt);
  const dir = path.join(os.tmpdir(), `dptrain-bench-scenes-${n}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(path.join(dir, 'SceneImages'), { recursive: true });
  writeFileSync(path.join(dir, 'train.csv'), `${train[0]}\n${trainRows.join('\n')}\n`);
  writeFileSync(path.join(dir, 'test.csv'), `${test[0]}\n${testRows.join('\n')}\n`);
  for (const row of [...trainRows, ...testRows]) {
    const name = row.split(',')[0]!;
    symlinkSync(path.join(dataDir, 'SceneImages', name), path.join(dir, 'SceneImages', name));
  }
  return { dir, labelled: trainRows.length, test: testRows.length };
}

function readPhases(runDir: string): Record<string, number> | undefined {
  try {
    const r = JSON.parse(readFileSync(path.join(runDir, 'report.json'), 'utf8')) as { timingsMs?: Record<string, number> };
    return r.timingsMs ? Object.fromEntries(Object.entries(r.timingsMs).map(([k, v]) => [k, Math.round(v / 100) / 10])) : undefined;
  } catch {
    return undefined;
  }
}

function readEpochs(runDir: string): { head?: number; fine_tune?: number } {
  const out: { head?: number; fine_tune?: number } = {};
  try {
    const rows = readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { phase: string; epochMs: number });
    for (const phase of ['head', 'fine_tune'] as const) {
      const ms = rows.filter((r) => r.phase === phase).map((r) => r.epochMs);
      if (ms.length > 0) out[phase] = Math.round(ms.reduce((a, b) => a + b, 0) / ms.length / 100) / 10;
    }
  } catch {
    // no metrics
  }
  return out;
}

/** Test accuracy (%) of a run's submission over the images it has (a subset run predicts part of the test set). */
function scoreRun(runDir: string, dataDir: string): number | undefined {
  const labels = path.join(dataDir, 'test_labels.csv');
  const sub = path.join(runDir, 'submission.csv');
  if (!existsSync(labels) || !existsSync(sub)) return undefined;
  const s = scoreSubmission(sub, labels);
  return s.scored > 0 ? Math.round((1000 * s.correct) / s.scored) / 10 : undefined;
}

export async function benchRecipe(options: RecipeBenchOptions): Promise<RecipeBenchResult> {
  const log = options.log ?? (() => {});
  const sourceDir = options.dataDir ?? process.env.DPTRAIN_SCENES ?? '/work/shared/data/scenes';
  if (!existsSync(path.join(sourceDir, 'train.csv'))) throw new Error(`no data at ${sourceDir} (set DPTRAIN_SCENES)`);
  let dataDir = sourceDir; // a subset folder when options.subset is set; test_labels.csv stays in sourceDir
  const cli = path.join(root, 'packages', 'cli', 'bin', 'dptrain.js');
  if (!existsSync(cli)) throw new Error('packages/cli/bin/dptrain.js not found');
  const epochs = options.epochs ?? (options.quick ? [2, 1] : [10, 5]);
  const uncachedEpochs = options.uncachedEpochs ?? (options.quick ? epochs : [1, 1]);
  const subset = options.subset ?? (options.quick ? 24 : undefined);
  const count = (f: string) => readFileSync(path.join(dataDir, f), 'utf8').trim().split('\n').length - 1;
  let labelled = count('train.csv');
  let test = count('test.csv');
  if (subset !== undefined) {
    const sub = makeSubset(dataDir, subset);
    dataDir = sub.dir;
    labelled = sub.labelled;
    test = sub.test;
  }
  log(`data: ${dataDir} (${labelled} labelled + ${test} test images), recipe ${epochs.join('+')} epochs`);
  const runs: RecipeRun[] = [];
  for (const cache of [true, false]) {
    const did: [number, number] = cache ? epochs : [Math.min(uncachedEpochs[0], epochs[0]), Math.min(uncachedEpochs[1], epochs[1])];
    const out = path.join(os.tmpdir(), `dptrain-bench-recipe-${cache ? 'cache' : 'nocache'}`);
    rmSync(out, { recursive: true, force: true });
    const args = [
      cli,
      'train',
      '--data',
      dataDir,
      '--backend',
      options.backend,
      '--out',
      out,
      '--quiet',
      '--epochs',
      String(did[0]),
      '--fine-tune-epochs',
      String(did[1]),
      '--patience',
      '1000',
      ...(cache ? [] : ['--no-cache']),
    ];
    const t0 = performance.now();
    const r = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
    const s = (performance.now() - t0) / 1000;
    if (r.status !== 0)
      throw new Error(`dptrain train ${cache ? '' : '--no-cache '}failed (${r.status}): ${`${r.stderr}${r.stdout}`.trim().split('\n').slice(-5).join(' | ')}`);
    const epochS = readEpochs(out);
    const missing: [number, number] = [epochs[0] - did[0], epochs[1] - did[1]];
    const estimated = missing[0] > 0 || missing[1] > 0;
    if (estimated && ((missing[0] > 0 && epochS.head === undefined) || (missing[1] > 0 && epochS.fine_tune === undefined))) {
      throw new Error(`uncached run: no per-epoch times in ${out}/metrics.jsonl to estimate the remaining epochs`);
    }
    const recipeS = s + missing[0] * (epochS.head ?? 0) + missing[1] * (epochS.fine_tune ?? 0);
    const run: RecipeRun = { cache, epochs: did, measured_s: Math.round(s * 10) / 10, epoch_s: epochS, recipe_s: Math.round(recipeS), estimated };
    const phases = readPhases(out);
    if (phases) run.phases_s = phases;
    const acc = scoreRun(out, sourceDir);
    if (acc !== undefined) run.test_accuracy = acc;
    runs.push(run);
    log(
      `${cache ? 'with cache   ' : 'without cache'}: ${did.join('+')} epochs measured ${run.measured_s} s (epochs: head ${epochS.head ?? '-'} s, fine-tune ${epochS.fine_tune ?? '-'} s each)` +
        (estimated ? ` -> ${epochs.join('+')} epochs ESTIMATED ${run.recipe_s} s` : '') +
        (phases ? ` phases ${JSON.stringify(phases)}` : ''),
    );
  }
  const [c, u] = runs as [RecipeRun, RecipeRun];
  const speedup = Math.round((u.recipe_s / Math.max(1e-9, c.recipe_s)) * 100) / 100;
  log(`caching speed-up: ${speedup}x (${u.estimated ? 'uncached time estimated from its measured epochs' : 'both measured whole'})`);
  return {
    backend: options.backend,
    data: { dir: dataDir, labelled, test },
    epochs,
    runs,
    cache_speedup: speedup,
    note: u.estimated
      ? `with cache: the whole ${epochs.join('+')}-epoch recipe measured; without: ${u.epochs.join('+')} epochs measured on the same data, the other epochs added at their measured per-epoch cost (every uncached epoch does the same work)`
      : 'both runs measured whole',
  };
}
