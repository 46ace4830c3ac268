// Wall time of the whole two-phase recipe (`dptrain train`: validate, head epochs, fine-tune epochs, evaluate,
// predict the test set) with and without the frozen-feature cache, on the real scene photos.
// The full data set (3,600 labelled + 600 test) takes hours without the cache on 2 cores, so by default it runs on a
// stratified subset (every k-th row of each class, symlinked into /tmp) and extrapolates linearly to the full set;
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
  /** Two subset sizes (labelled images; the test set is cut in the same proportion). Default [30, 90]. */
  sizes?: [number, number];
  /** Data directory. Default /work/shared/data/scenes ($DPTRAIN_SCENES). */
  dataDir?: string;
  /** Phase 1 / phase 2 epochs. Default 10 / 5 (the recipe's defaults). */
  epochs?: [number, number];
  quick?: boolean;
  log?: (message: string) => void;
}

export interface RecipeRun {
  cache: boolean;
  /** Labelled images of the subset. */
  labelled: number;
  test: number;
  /** Measured wall time of `dptrain train` on the subset (process start to exit), s. */
  measured_s: number;
  /** The run's own phase timings (report.json timingsMs), s. */
  phases_s?: Record<string, number>;
}

export interface RecipeFit {
  cache: boolean;
  /** Fixed cost (start-up, model build), s: the intercept of the fit through the two subsets. */
  fixed_s: number;
  /** Cost per labelled image (its share of the test set included), s. */
  per_image_s: number;
  /** EXTRAPOLATED wall time on the full data set: fixed_s + per_image_s x all labelled images. */
  extrapolated_full_s: number;
}

export interface RecipeBenchResult {
  backend: string;
  subset: { labelled: number; test: number; of_labelled: number; of_test: number };
  epochs: [number, number];
  runs: RecipeRun[];
  fits: RecipeFit[];
  /** Uncached / cached wall time on the larger subset (measured). */
  cache_speedup_measured: number;
  /** Uncached / cached extrapolated full-data wall time. */
  cache_speedup_extrapolated: number;
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
  return { dir, labelled: trainRows.length, test: testRows.length, allLabelled, allTest };
}

function readPhases(runDir: string): Record<string, number> | undefined {
  try {
    const r = JSON.parse(readFileSync(path.join(runDir, 'report.json'), 'utf8')) as { timingsMs?: Record<string, number> };
    return r.timingsMs ? Object.fromEntries(Object.entries(r.timingsMs).map(([k, v]) => [k, Math.round(v / 100) / 10])) : undefined;
  } catch {
    return undefined;
  }
}

export async function benchRecipe(options: RecipeBenchOptions): Promise<RecipeBenchResult> {
  const log = options.log ?? (() => {});
  const dataDir = options.dataDir ?? process.env.DPTRAIN_SCENES ?? '/work/shared/data/scenes';
  if (!existsSync(path.join(dataDir, 'train.csv'))) throw new Error(`no data at ${dataDir} (set DPTRAIN_SCENES)`);
  const cli = path.join(root, 'packages', 'coordinator', 'bin', 'dptrain.js');
  if (!existsSync(cli)) throw new Error('packages/coordinator/bin/dptrain.js not found');
  const epochs = options.epochs ?? (options.quick ? [2, 1] : [10, 5]);
  const sizes = options.sizes ?? (options.quick ? [12, 24] : [30, 90]);
  const runs: RecipeRun[] = [];
  let allLabelled = 0;
  let allTest = 0;
  for (const n of sizes) {
    const sub = makeSubset(dataDir, n);
    allLabelled = sub.allLabelled;
    allTest = sub.allTest;
    log(`subset: ${sub.labelled}/${sub.allLabelled} labelled + ${sub.test}/${sub.allTest} test images (${sub.dir}), epochs ${epochs.join('+')}`);
    for (const cache of [true, false]) {
      const out = path.join(os.tmpdir(), `dptrain-bench-run-${n}-${cache ? 'cache' : 'nocache'}`);
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
      const run: RecipeRun = { cache, labelled: sub.labelled, test: sub.test, measured_s: Math.round(s * 10) / 10 };
      const phases = readPhases(out);
      if (phases) run.phases_s = phases;
      runs.push(run);
      log(`  ${cache ? 'with cache   ' : 'without cache'}: ${run.measured_s} s measured${phases ? ` (phases ${JSON.stringify(phases)})` : ''}`);
    }
  }
  const fits: RecipeFit[] = [true, false].map((cache) => {
    const [r1, r2] = runs.filter((r) => r.cache === cache) as [RecipeRun, RecipeRun];
    const per = (r2.measured_s - r1.measured_s) / (r2.labelled - r1.labelled);
    const fixed = Math.max(0, r1.measured_s - per * r1.labelled);
    return { cache, fixed_s: Math.round(fixed * 10) / 10, per_image_s: Math.round(per * 1000) / 1000, extrapolated_full_s: Math.round(fixed + per * allLabelled) };
  });
  const at = (cache: boolean) => runs.filter((r) => r.cache === cache).sort((p, q) => q.labelled - p.labelled)[0]!;
  const speedMeasured = Math.round((at(false).measured_s / at(true).measured_s) * 100) / 100;
  const fc = fits.find((f) => f.cache)!;
  const fu = fits.find((f) => !f.cache)!;
  const speedExtrapolated = Math.round((fu.extrapolated_full_s / Math.max(1, fc.extrapolated_full_s)) * 100) / 100;
  for (const f of fits) log(`${f.cache ? 'with cache   ' : 'without cache'}: fixed ${f.fixed_s} s + ${f.per_image_s} s/image -> EXTRAPOLATED ~${f.extrapolated_full_s} s for ${allLabelled} + ${allTest} images`);
  log(`caching speed-up: ${speedMeasured}x measured on ${at(true).labelled} images, ${speedExtrapolated}x extrapolated to ${allLabelled}`);
  return {
    backend: options.backend,
    subset: { labelled: at(true).labelled, test: at(true).test, of_labelled: allLabelled, of_test: allTest },
    epochs,
    runs,
    fits,
    cache_speedup_measured: speedMeasured,
    cache_speedup_extrapolated: speedExtrapolated,
    note: `measured on subsets of ${sizes.join(' and ')} labelled images (stratified, test set in proportion); full-data figures are a linear fit through the two (EXTRAPOLATED)`,
  };
}
