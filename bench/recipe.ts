// Wall time of the whole two-phase recipe (`dptrain train`: validate, head epochs, fine-tune epochs, evaluate,
// predict the test set) with and without the frozen-feature cache, on the real scene photos.
// The full data set (3,600 labelled + 600 test) takes hours without the cache on 2 cores, so by default it runs on a
// stratified-by-position subset (every k-th row, symlinked into /tmp) and extrapolates linearly to the full set;
// the output says which figures are measured and which are extrapolated.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');

export interface RecipeBenchOptions {
  /** Backend for `dptrain train`. */
  backend: string;
  /** Labelled images in the subset (the test set is cut in the same proportion). Default 240. */
  images?: number;
  /** Data directory. Default /work/shared/data/scenes ($DPTRAIN_SCENES). */
  dataDir?: string;
  /** Phase 1 / phase 2 epochs. Default 10 / 5 (the recipe's defaults). */
  epochs?: [number, number];
  quick?: boolean;
  log?: (message: string) => void;
}

export interface RecipeRun {
  cache: boolean;
  /** Measured wall time on the subset, s. */
  measured_s: number;
  /** Linear extrapolation to the full data set, s (labelled: measured). */
  extrapolated_full_s: number;
}

export interface RecipeBenchResult {
  backend: string;
  subset: { labelled: number; test: number; of_labelled: number; of_test: number };
  epochs: [number, number];
  runs: RecipeRun[];
  /** extrapolated (or measured) uncached / cached wall time. */
  cache_speedup: number;
  note: string;
}

function makeSubset(dataDir: string, labelled: number): { dir: string; labelled: number; test: number; allLabelled: number; allTest: number } {
  const train = readFileSync(path.join(dataDir, 'train.csv'), 'utf8').trim().split('\n');
  const test = readFileSync(path.join(dataDir, 'test.csv'), 'utf8').trim().split('\n');
  const allLabelled = train.length - 1;
  const allTest = test.length - 1;
  const n = Math.min(labelled, allLabelled);
  const nt = Math.max(1, Math.round((allTest * n) / allLabelled));
  const every = <T>(rows: T[], k: number) => rows.filter((_, i) => i % Math.max(1, Math.floor(rows.length / k)) === 0).slice(0, k);
  const trainRows = every(train.slice(1), n);
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
  return { dir, labelled: trainRows.length, test: testRows.length, allLabelled, allTest };
}

export async function benchRecipe(options: RecipeBenchOptions): Promise<RecipeBenchResult> {
  const log = options.log ?? (() => {});
  const dataDir = options.dataDir ?? process.env.DPTRAIN_SCENES ?? '/work/shared/data/scenes';
  if (!existsSync(path.join(dataDir, 'train.csv'))) throw new Error(`no data at ${dataDir} (set DPTRAIN_SCENES)`);
  const cli = path.join(root, 'packages', 'coordinator', 'bin', 'dptrain.js');
  if (!existsSync(cli)) throw new Error('packages/coordinator/bin/dptrain.js not found');
  const epochs = options.epochs ?? [10, 5];
  const sub = makeSubset(dataDir, options.images ?? (options.quick ? 60 : 240));
  const scale = sub.allLabelled / sub.labelled;
  log(`subset: ${sub.labelled}/${sub.allLabelled} labelled + ${sub.test}/${sub.allTest} test images (${sub.dir}), epochs ${epochs.join('+')}`);
  const runs: RecipeRun[] = [];
  for (const cache of [true, false]) {
    const out = path.join(os.tmpdir(), `dptrain-bench-run-${cache ? 'cache' : 'nocache'}`);
    rmSync(out, { recursive: true, force: true });
    const args = [
      cli, 'train', '--data', sub.dir, '--backend', options.backend, '--out', out, '--quiet',
      '--epochs', String(epochs[0]), '--fine-tune-epochs', String(epochs[1]), '--patience', '1000',
      ...(cache ? [] : ['--no-cache']),
    ];
    const t0 = performance.now();
    const r = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
    const s = (performance.now() - t0) / 1000;
    if (r.status !== 0) throw new Error(`dptrain train ${cache ? '' : '--no-cache '}failed (${r.status}): ${`${r.stderr}${r.stdout}`.trim().split('\n').slice(-5).join(' | ')}`);
    const run = { cache, measured_s: Math.round(s * 10) / 10, extrapolated_full_s: Math.round(s * scale) };
    runs.push(run);
    log(`${cache ? 'with cache   ' : 'without cache'}: ${run.measured_s} s measured on the subset -> ~${run.extrapolated_full_s} s extrapolated to ${sub.allLabelled} images`);
  }
  const cached = runs.find((r) => r.cache)!;
  const uncached = runs.find((r) => !r.cache)!;
  const speedup = Math.round((uncached.measured_s / cached.measured_s) * 100) / 100;
  log(`caching speed-up: ${speedup}x`);
  return {
    backend: options.backend,
    subset: { labelled: sub.labelled, test: sub.test, of_labelled: sub.allLabelled, of_test: sub.allTest },
    epochs,
    runs,
    cache_speedup: speedup,
    note: `measured on a ${sub.labelled}-image subset; extrapolated_full_s = measured x ${scale.toFixed(1)} (linear in images; start-up is scaled too)`,
  };
}
