// One benchmark worker process: times the VGG16 fine-tune step (block5 + head trainable, 150 px) on one backend.
// Run by bench/run.ts (one process per worker); prints one JSON line `{"result": StepResult}` on stdout.
// Usage: tsx bench/step-worker.ts --backend native|wasm|cpu --mode images|features --batch 8 --steps 6 --warmup 2
//        [--threads N] [--precision fp32|bf16] [--cache-format fp16|bf16] [--profile] [--barrier]
import * as tf from '@tensorflow/tfjs';
import { parseArgs } from 'node:util';
import { AdamOptimizer, parseRunConfig, useNativeOptimizer, withRunPrecision, type Precision, type Sample } from '@dptrain/core';
import { createReplica } from '../packages/core/src/training/replica.js';
import { useBackend } from './backends.js';

export interface StepResult {
  backend: string;
  device: string;
  /** fp32, or bf16 (native: bf16 convolutions and matmuls, fp32 accumulation; PyTorch: bf16 autocast). */
  precision: Precision;
  mode: 'images' | 'features';
  batch: number;
  steps: number;
  /** Median wall time of one step (gradients + Adam update + setWeights), ms; img_per_s is batch / this. */
  step_ms: number;
  /** Mean wall time of one step, ms. */
  mean_step_ms: number;
  img_per_s: number;
  /** Peak resident set size of this process, MiB. */
  peak_rss_mib: number;
  /** Trainable parameters of the fine-tune phase. */
  params: number;
  /** CPU time (user + system, all threads) per step, ms: with one thread, close to the uncontended wall time. */
  cpu_ms: number;
  /** CPU time per step by part: replica gradients, Adam update, setWeights. */
  cpu_parts_ms: Record<string, number>;
  profile?: { kernel: string; ms: number; calls: number }[];
}

const { values: a } = parseArgs({
  options: {
    backend: { type: 'string', default: 'native' },
    mode: { type: 'string', default: 'features' },
    batch: { type: 'string', default: '8' },
    steps: { type: 'string', default: '6' },
    warmup: { type: 'string', default: '2' },
    threads: { type: 'string' },
    precision: { type: 'string', default: 'fp32' },
    'cache-format': { type: 'string', default: 'fp16' },
    profile: { type: 'boolean', default: false },
    barrier: { type: 'boolean', default: false },
  },
});
const mode = a.mode === 'images' ? 'images' : 'features';
const batch = Number(a.batch);
const steps = Number(a.steps);
const warmup = Number(a.warmup);
const threads = a.threads !== undefined ? Number(a.threads) : undefined;

const be = await useBackend(a.backend as 'native' | 'wasm' | 'cpu', threads);
// the optimizer as runTraining runs it: the addon's Adam when the addon is present (for every backend, as there)
await useNativeOptimizer();

// Synthetic preprocessed pixels (no JPEG decode in the step, as in the PyTorch script): deterministic per sample.
const H = 150;
const images = {
  async loadBatch(samples: readonly Sample[]) {
    const per = H * H * 3;
    const data = new Float32Array(samples.length * per);
    samples.forEach((s, i) => {
      let x = (s.index + 1) * 2654435761;
      for (let j = 0; j < per; j++) {
        x = (x * 1103515245 + 12345) >>> 0;
        data[i * per + j] = (x / 4294967296) * 255 - 120;
      }
    });
    return { data, shape: [samples.length, H, H, 3] };
  },
};
// as `dptrain train` sets it (E_PRECISION where the backend cannot run it)
const config = await withRunPrecision(
  parseRunConfig({ dataDir: '/nonexistent', classNames: ['a', 'b', 'c', 'd', 'e', 'f'], backbone: { kind: 'vgg16' }, precision: a.precision as Precision }),
  a.backend as 'native' | 'wasm' | 'cpu',
);
// as `dptrain train` and workers create it (gradient buffers reused in turn)
const replica = await createReplica(config, {
  images,
  cache: mode === 'features',
  cacheBf16: a['cache-format'] === 'bf16',
  gradientBuffers: 2,
  onWarning: () => {},
});
await replica.setPhase('fine_tune');
const samples: Sample[] = Array.from(
  { length: batch },
  (_, i) =>
    ({
      name: `s${i}.jpg`,
      path: `/synthetic/s${i}.jpg`,
      label: i % 6,
      split: 'labelled',
      index: i,
    }) as unknown as Sample,
);
const opt = new AdamOptimizer({ learningRate: 1e-5 });
const weights = replica.getWeights();

const parts = { gradients: 0, optimizer: 0, setWeights: 0 };
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
async function step(i: number): Promise<void> {
  let t = cpuMs();
  const g = await replica.computeGradients(samples, { phase: 'fine_tune', epoch: 0, step: i });
  let t2 = cpuMs();
  parts.gradients += t2 - t;
  opt.step(weights, g.gradients);
  t = cpuMs();
  parts.optimizer += t - t2;
  replica.setWeights(weights);
  t2 = cpuMs();
  parts.setWeights += t2 - t;
}

// Features mode: the first (warm-up) step fills the cache; timed steps read block4_pool features from it.
for (let i = 0; i < warmup; i++) await step(i);
// With --barrier, wait until the parent says go (all workers warmed up), so parallel workers time the same window.
if (process.argv.includes('--barrier')) {
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
  await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
  process.stdin.pause();
}
let profile: StepResult['profile'];
if (a.profile) {
  const info = await tf.profile(() => step(-1));
  const agg = new Map<string, { ms: number; calls: number }>();
  for (const k of info.kernels) {
    const e = agg.get(k.name) ?? { ms: 0, calls: 0 };
    e.ms += Number(k.kernelTimeMs) || 0;
    e.calls++;
    agg.set(k.name, e);
  }
  profile = [...agg]
    .map(([kernel, v]) => ({ kernel, ...v }))
    .sort((x, y) => y.ms - x.ms)
    .slice(0, 25);
}
parts.gradients = parts.optimizer = parts.setWeights = 0;
const c0 = cpuMs();
const t0 = performance.now();
const each: number[] = [];
for (let i = 0; i < steps; i++) {
  const s0 = performance.now();
  await step(warmup + i);
  each.push(performance.now() - s0);
}
const meanMs = (performance.now() - t0) / steps;
const ms = [...each].sort((x, y) => x - y)[Math.floor(each.length / 2)]!; // median step: robust to the odd slow step
const cpuPerStep = (cpuMs() - c0) / steps;
const result: StepResult = {
  backend: a.backend!,
  device: be.device,
  precision: config.precision,
  mode,
  batch,
  steps,
  step_ms: Math.round(ms * 10) / 10,
  mean_step_ms: Math.round(meanMs * 10) / 10,
  img_per_s: Math.round((batch / (ms / 1000)) * 100) / 100,
  peak_rss_mib: Math.round(process.resourceUsage().maxRSS / 1024),
  params: weights.length,
  cpu_ms: Math.round(cpuPerStep),
  cpu_parts_ms: Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, Math.round(v / steps)])),
};
if (profile) result.profile = profile;
if (a.backend === 'native') {
  const { nativeKernelStats, outputPoolStats } = await import('@dptrain/backend-native');
  // recycled kernel outputs over the whole run (warm-up included): what the pool saved from the garbage collector
  (result as StepResult & { pool?: unknown }).pool = outputPoolStats();
  if (a.profile) (result as StepResult & { stats?: unknown }).stats = nativeKernelStats();
}
process.stdout.write(`${JSON.stringify({ result })}\n`);
replica.dispose();
