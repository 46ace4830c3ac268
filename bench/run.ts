// `npm run bench [-- --json FILE] [--backends native,wasm] [--modes images,features] [--workers 1,2] [--steps N]
//   [--precisions fp32,bf16] [--rounds R] [--quick] [--no-torch] [--no-gflops] [--no-recipe] [--recipe-subset N]
//   [--recipe-epochs 10,5] [--recipe-uncached-epochs 1,1] [--no-exchange] [--no-steps] [--no-device-step]`
// `npm run bench -- --exchange-lab [--json FILE] [--lab-hosts 2,4] [--lab-workers-per-host 1,2,4] [--lab-rounds R] ...`
//   runs only the multi-host exchange lab (bench/exchange-lab.bench.ts; root + ip/tc, skipped otherwise).
// Times the VGG16 fine-tune step (block5 + head, 150 px, batch 8 per worker) from images and from cached block4
// features, with 1 and 2 worker processes, on each available backend, in fp32 and bf16 (native where the CPU has
// AVX512-BF16/AMX; PyTorch's bf16 autocast); PyTorch on the same shapes when it imports; the block5 convolutions'
// GFLOP/s per core against the ISA's peak (bench/conv-gflops.ts); the two-phase recipe with and without the feature
// cache; the parameter exchange (bench/exchange.bench.ts).
import { existsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { detectBf16Isa } from '@dptrain/core';
import { pinnedArgv } from '../packages/coordinator/src/cluster/cpu-affinity.js';
import { workerCpuSets } from '../packages/coordinator/src/cluster/local-workers.js';
import { runParallel, type ProcSpec } from './parallel.js';
import { findTorchPython } from './python.js';
import { benchRecipe, type RecipeBenchResult } from './recipe.js';
import type { StepResult } from './step-worker.js';
import { benchConvGflops, type ConvGflopsResult } from './conv-gflops.js';
import type { Precision } from '@dptrain/core';
import { benchExchangeLab, EXCHANGE_LAB_FLAGS, exchangeLabJson, exchangeLabOptionsFromFlags } from './exchange-lab.bench.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');

const { values: a } = parseArgs({
  options: {
    json: { type: 'string' },
    backends: { type: 'string' },
    modes: { type: 'string', default: 'images,features' },
    workers: { type: 'string', default: '1,2' },
    steps: { type: 'string' },
    rounds: { type: 'string' },
    warmup: { type: 'string', default: '2' },
    batch: { type: 'string', default: '8' },
    quick: { type: 'boolean', default: false },
    torch: { type: 'boolean', default: true },
    'no-torch': { type: 'boolean', default: false },
    precisions: { type: 'string', default: 'fp32,bf16' },
    'no-gflops': { type: 'boolean', default: false },
    recipe: { type: 'boolean', default: true },
    'no-recipe': { type: 'boolean', default: false },
    'recipe-subset': { type: 'string' },
    'recipe-uncached-epochs': { type: 'string' },
    'recipe-epochs': { type: 'string' },
    'no-exchange': { type: 'boolean', default: false },
    'no-device-step': { type: 'boolean', default: false },
    'no-steps': { type: 'boolean', default: false },
    'exchange-lab': { type: 'boolean', default: false },
    ...EXCHANGE_LAB_FLAGS,
  },
  allowPositionals: false,
});

if (a['exchange-lab']) {
  console.log(
    `dptrain bench --exchange-lab: load ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  const lab = await benchExchangeLab(exchangeLabOptionsFromFlags(a));
  if (a.json) {
    writeFileSync(a.json, `${JSON.stringify(exchangeLabJson(lab), null, 2)}\n`);
    console.log(`wrote ${a.json}`);
  }
  process.exit(0);
}

/** One measurement of the step: the JSON's `results` entries. */
export interface BenchResult {
  backend: string;
  /** fp32, or bf16 (native: bf16 convolutions and matmuls with fp32 accumulation; PyTorch: bf16 autocast). */
  precision: Precision;
  mode: 'images' | 'features';
  workers: number;
  /** oneDNN / PyTorch / wasm threads per worker process. */
  threads: number;
  batch: number;
  /** Images per second over all workers: the median of the rounds. */
  img_per_s: number;
  /** img/s of each round (the configurations of a backend and mode take turns, round after round). */
  rounds_img_per_s: number[];
  /** The CPUs each worker process was pinned to (`0|1`), or absent when not pinned. */
  pinned_cpus?: string;
  step_ms: number;
  /**
   * Images per CPU-second (all threads of a process), mean over its worker processes: what a step costs in CPU,
   * which other jobs on a shared machine disturb less than wall time.
   */
  img_per_cpu_s: number;
  /** Largest peak RSS of one worker process, MiB. */
  peak_rss_mib: number;
  device: string;
}

const batch = Number(a.batch);
const steps = Number(a.steps ?? (a.quick ? 2 : 8));
// Rounds: 1 worker, 2 workers and 1 process x all threads take turns, R times, and each figure is the median of its
// rounds, so that a slow minute of this shared VM does not land on one configuration only.
const rounds = Number(a.rounds ?? (a.quick ? 1 : 3));
const warmup = Number(a.warmup);
const modes = a.modes!.split(',') as ('images' | 'features')[];
const workerCounts = a.workers!.split(',').map(Number);
const tsx = path.join(root, 'node_modules', '.bin', 'tsx');

async function available(backend: string): Promise<string | null> {
  if (backend !== 'native') return null;
  try {
    const { registerNativeBackend } = await import('@dptrain/backend-native');
    await registerNativeBackend();
    return null;
  } catch (err) {
    return err instanceof Error ? err.message.split('\n')[0]! : String(err);
  }
}

function stepSpec(backend: string, mode: string, threads: number, precision: Precision): ProcSpec {
  const args = [
    '--mode',
    mode,
    '--batch',
    String(batch),
    '--steps',
    String(steps),
    '--warmup',
    String(warmup),
    '--threads',
    String(threads),
    '--precision',
    precision,
  ];
  const env = { OMP_NUM_THREADS: String(threads), DPTRAIN_NATIVE_THREADS: String(threads) };
  if (backend === 'pytorch') return { command: torchPython!, args: [path.join(here, 'torch_step.py'), ...args], env };
  return { command: tsx, args: [path.join(here, 'step-worker.ts'), '--backend', backend, ...args], env };
}

async function measure(backend: string, mode: 'images' | 'features', workers: number, threads: number, precision: Precision): Promise<BenchResult> {
  // Worker processes get their own CPUs, as `dptrain single` pins its local workers (PyTorch's too, for the same
  // footing); one process with every thread is not pinned.
  const { sets } = workers > 1 ? workerCpuSets({ count: workers }) : { sets: null };
  const specs = Array.from({ length: workers }, (_, i) => {
    const spec = stepSpec(backend, mode, threads, precision);
    const [command, ...args] = pinnedArgv([spec.command, ...spec.args], sets?.[i]);
    return { ...spec, command: command!, args };
  });
  const rs = await runParallel<StepResult>(specs);
  const r0 = rs[0]!;
  const imgPerS = Math.round(rs.reduce((s, r) => s + r.img_per_s, 0) * 100) / 100;
  return {
    backend,
    precision,
    mode,
    workers,
    threads,
    batch,
    img_per_s: imgPerS,
    rounds_img_per_s: [imgPerS],
    step_ms: Math.round(Math.max(...rs.map((r) => r.step_ms)) * 10) / 10,
    img_per_cpu_s: Math.round((rs.reduce((s, r) => s + batch / (r.cpu_ms / 1000), 0) / rs.length) * 100) / 100,
    peak_rss_mib: Math.max(...rs.map((r) => r.peak_rss_mib)),
    device: r0.device,
    ...(sets ? { pinned_cpus: sets.map((c) => c.join(',')).join('|') } : {}),
  };
}

/** The round with the median img/s (the lower middle one for an even count), carrying every round's img/s. */
function medianRound(rs: BenchResult[]): BenchResult {
  const sorted = [...rs].sort((x, y) => x.img_per_s - y.img_per_s);
  const mid = sorted[Math.floor((sorted.length - 1) / 2)]!;
  const cpu = rs.map((r) => r.img_per_cpu_s).sort((x, y) => x - y)[Math.floor((rs.length - 1) / 2)]!;
  return { ...mid, img_per_cpu_s: cpu, rounds_img_per_s: rs.map((r) => r.img_per_s), peak_rss_mib: Math.max(...rs.map((r) => r.peak_rss_mib)) };
}

const cores = os.availableParallelism();
const noTorch = a['no-torch'] || !a.torch;
const torchInfo = noTorch ? null : findTorchPython();
const torchPython = torchInfo?.python;
const wanted = (a.backends ?? 'native,wasm').split(',').filter(Boolean);
const backends: string[] = [];
const skipped: { backend: string; reason: string }[] = [];
for (const b of wanted) {
  const why = await available(b);
  if (why) skipped.push({ backend: b, reason: why });
  else backends.push(b);
}
if (torchPython) backends.push('pytorch');
else if (!noTorch) skipped.push({ backend: 'pytorch', reason: 'no python3 that can `import torch`' });
// bf16 runs on the native backend where oneDNN finds AVX512-BF16 or AMX, and on PyTorch (autocast) wherever it imports
const bf16Isa = backends.includes('native') ? await detectBf16Isa() : null;
const wantedPrecisions = a.precisions!.split(',').filter(Boolean) as Precision[];
function precisionsOf(backend: string): Precision[] {
  return wantedPrecisions.filter((p) => p === 'fp32' || backend === 'pytorch' || (backend === 'native' && bf16Isa !== null));
}
if (wantedPrecisions.includes('bf16')) {
  for (const b of backends.filter((x) => !precisionsOf(x).includes('bf16'))) {
    skipped.push({ backend: `${b} bf16`, reason: b === 'native' ? 'this CPU has neither AVX512-BF16 nor AMX' : `bf16 exists on the native backend only` });
  }
}

console.log(
  `dptrain bench: ${os.cpus()[0]?.model ?? 'cpu'} x${cores}, load ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}, batch ${batch}/worker, ${steps} timed steps after ${warmup} warm-up, median of ${rounds} round${rounds === 1 ? '' : 's'}`,
);
for (const s of skipped) console.log(`  skipped ${s.backend}: ${s.reason}`);

const results: BenchResult[] = [];
const print = (r: BenchResult) =>
  console.log(
    `  ${r.backend.padEnd(8)} ${r.precision} ${r.mode.padEnd(9)} workers ${r.workers} x ${r.threads} thr  ${r.img_per_s.toFixed(2).padStart(7)} img/s  step ${r.step_ms.toFixed(0).padStart(6)} ms  ${r.img_per_cpu_s.toFixed(1).padStart(6)} img/CPU-s  peak ${r.peak_rss_mib} MiB` +
      (r.rounds_img_per_s.length > 1 ? `  (rounds ${r.rounds_img_per_s.map((v) => v.toFixed(1)).join(', ')})` : '') +
      (r.pinned_cpus ? `  pinned ${r.pinned_cpus}` : ''),
  );
if (!a['no-steps']) console.log('\nVGG16 fine-tune step (block5 + head, 150 px):');
for (const mode of a['no-steps'] ? [] : modes) {
  // every backend x precision x layout of a mode takes its turn in each round, so they share the machine's moods
  const configs: { backend: string; precision: Precision; workers: number; threads: number }[] = [];
  for (const backend of backends) {
    for (const precision of precisionsOf(backend)) {
      for (const w of workerCounts.filter((n) => n <= cores)) configs.push({ backend, precision, workers: w, threads: 1 });
      // Threads layout: one process using every core (oneDNN/OpenMP or torch threads) vs one process per core.
      if ((backend === 'native' || backend === 'pytorch') && cores > 1) configs.push({ backend, precision, workers: 1, threads: cores });
    }
  }
  const runs = configs.map(() => [] as BenchResult[]);
  for (let round = 0; round < rounds; round++) {
    for (const [i, c] of configs.entries()) runs[i]!.push(await measure(c.backend, mode, c.workers, c.threads, c.precision));
  }
  for (const rs of runs) {
    const r = medianRound(rs);
    results.push(r);
    print(r);
  }
}

const find = (b: string, m: string, w: number, t: number, p: Precision = 'fp32') =>
  results.find((r) => r.backend === b && r.mode === m && r.workers === w && r.threads === t && r.precision === p);
const ratio = (x: number, y: number) => Math.round((x / y) * 100) / 100;
const ratios: {
  backend: string;
  precision: Precision;
  mode: string;
  workers: number;
  threads: number;
  /** vs PyTorch fp32 on the same layout. */
  vs_pytorch?: number;
  /** vs PyTorch bf16 autocast on the same layout. */
  vs_pytorch_bf16?: number;
  /** bf16 rows: vs the same backend's fp32 row. */
  vs_fp32?: number;
  /** The same two ratios on images per CPU-second (less disturbed by other jobs on a shared machine). */
  cpu_vs_pytorch?: number;
  cpu_vs_pytorch_bf16?: number;
  scaling_2_workers?: number;
}[] = [];
if (results.length > 0) console.log('\nRatios:');
for (const r of results) {
  if (r.backend === 'pytorch') continue;
  const entry: (typeof ratios)[number] = { backend: r.backend, precision: r.precision, mode: r.mode, workers: r.workers, threads: r.threads };
  const t = find('pytorch', r.mode, r.workers, r.threads, 'fp32');
  if (t) entry.vs_pytorch = ratio(r.img_per_s, t.img_per_s);
  const tb = find('pytorch', r.mode, r.workers, r.threads, 'bf16');
  if (tb) entry.vs_pytorch_bf16 = ratio(r.img_per_s, tb.img_per_s);
  if (t) entry.cpu_vs_pytorch = ratio(r.img_per_cpu_s, t.img_per_cpu_s);
  if (tb) entry.cpu_vs_pytorch_bf16 = ratio(r.img_per_cpu_s, tb.img_per_cpu_s);
  const f = find(r.backend, r.mode, r.workers, r.threads, 'fp32');
  if (r.precision !== 'fp32' && f) entry.vs_fp32 = ratio(r.img_per_s, f.img_per_s);
  const one = find(r.backend, r.mode, 1, 1, r.precision);
  if (r.workers === 2 && one) entry.scaling_2_workers = ratio(r.img_per_s, one.img_per_s);
  ratios.push(entry);
  const vs = [
    entry.vs_pytorch !== undefined ? `${entry.vs_pytorch}x PyTorch fp32` : 'no PyTorch fp32 figure',
    entry.vs_pytorch_bf16 !== undefined ? `${entry.vs_pytorch_bf16}x PyTorch bf16` : 'no PyTorch bf16 figure',
    ...(entry.vs_fp32 !== undefined ? [`${entry.vs_fp32}x its fp32`] : []),
    ...(entry.cpu_vs_pytorch !== undefined || entry.cpu_vs_pytorch_bf16 !== undefined
      ? [`per CPU-second ${entry.cpu_vs_pytorch ?? '?'}x / ${entry.cpu_vs_pytorch_bf16 ?? '?'}x`]
      : []),
  ];
  console.log(
    `  ${r.backend.padEnd(8)} ${r.precision} ${r.mode.padEnd(9)} ${r.workers}x${r.threads}: ${vs.join(', ')}` +
      (entry.scaling_2_workers !== undefined ? `, 2 workers = ${entry.scaling_2_workers}x one` : ''),
  );
}
for (const b of ['pytorch']) {
  for (const p of precisionsOf(b)) {
    for (const m of modes) {
      const one = find(b, m, 1, 1, p);
      const two = find(b, m, 2, 1, p);
      const f = find(b, m, 1, 1, 'fp32');
      if (one && two)
        console.log(
          `  ${b.padEnd(8)} ${p} ${m.padEnd(9)} 2 workers = ${(two.img_per_s / one.img_per_s).toFixed(2)}x one` +
            (p !== 'fp32' && f ? `; 1x1 ${ratio(one.img_per_s, f.img_per_s)}x its fp32` : ''),
        );
    }
  }
}
const layout: Record<string, string> = {};
for (const b of ['native', 'pytorch']) {
  for (const m of modes) {
    const procs = find(b, m, cores, 1);
    const thr = find(b, m, 1, cores);
    if (procs && thr) {
      layout[`${b}/${m}`] = procs.img_per_s >= thr.img_per_s ? `${cores} processes x 1 thread` : `1 process x ${cores} threads`;
      console.log(
        `  layout ${b}/${m}: ${cores} procs x 1 thr ${procs.img_per_s} img/s vs 1 proc x ${cores} thr ${thr.img_per_s} img/s -> ${layout[`${b}/${m}`]}`,
      );
    }
  }
}

let gflops: ConvGflopsResult | { skipped: string } | undefined;
if (!a['no-gflops'] && backends.includes('native')) {
  console.log('\nVGG16 block5 convolutions, 1 core (bench/conv-gflops.ts):');
  try {
    gflops = await benchConvGflops({ batch, quick: a.quick, log: (l) => console.log(`  ${l}`) });
  } catch (err) {
    gflops = { skipped: err instanceof Error ? err.message : String(err) };
    console.log(`  skipped: ${gflops.skipped}`);
  }
}

let recipe: RecipeBenchResult | { skipped: string } | undefined;
if (!a['no-recipe'] && a.recipe) {
  const backend = backends.includes('native') ? 'native' : 'wasm';
  console.log(`\nTwo-phase recipe (${backend}):`);
  try {
    const opts: Parameters<typeof benchRecipe>[0] = { backend, quick: a.quick, log: (m) => console.log(`  ${m}`) };
    if (a['recipe-subset']) opts.subset = Number(a['recipe-subset']);
    if (a['recipe-uncached-epochs']) opts.uncachedEpochs = a['recipe-uncached-epochs'].split(',').map(Number) as [number, number];
    if (a['recipe-epochs']) opts.epochs = a['recipe-epochs'].split(',').map(Number) as [number, number];
    recipe = await benchRecipe(opts);
  } catch (err) {
    recipe = { skipped: err instanceof Error ? err.message : String(err) };
    console.log(`  skipped: ${recipe.skipped}`);
  }
}

let exchange: unknown;
const exchangeFile = path.join(here, 'exchange.bench.ts');
if (!a['no-exchange'] && existsSync(exchangeFile)) {
  console.log('\nParameter exchange (bench/exchange.bench.ts):');
  try {
    const mod = (await import(pathToFileURL(exchangeFile).href)) as {
      benchExchange?: (o?: { quick?: boolean; log?: (l: string) => void }) => Promise<unknown>;
    };
    if (typeof mod.benchExchange === 'function') {
      exchange = await mod.benchExchange({ quick: a.quick, log: (l: string) => console.log(`  ${l}`) });
    } else console.log('  bench/exchange.bench.ts exports no benchExchange; skipped');
  } catch (err) {
    exchange = { skipped: err instanceof Error ? err.message : String(err) };
    console.log(`  failed: ${(exchange as { skipped: string }).skipped}`);
  }
}

let deviceStep: unknown;
if (!a['no-device-step']) {
  console.log('\nHost merge vs device step, bytes host<->device per step (bench/device-step.bench.ts):');
  try {
    const { benchDeviceStep } = await import('./device-step.bench.js');
    deviceStep = await benchDeviceStep({ log: (l: string) => console.log(`  ${l}`) });
  } catch (err) {
    deviceStep = { skipped: err instanceof Error ? err.message : String(err) };
    console.log(`  failed: ${(deviceStep as { skipped: string }).skipped}`);
  }
}

if (a.json) {
  const out = {
    date: new Date().toISOString(),
    machine: { cpu: os.cpus()[0]?.model ?? 'cpu', cores, loadavg: os.loadavg(), node: process.version, torch: torchInfo?.version ?? null },
    settings: { batch, steps, warmup, rounds, precisions: wantedPrecisions },
    results,
    ratios,
    layout,
    gflops,
    skipped,
    recipe,
    exchange,
    deviceStep,
  };
  writeFileSync(a.json, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`\nwrote ${a.json}`);
}
