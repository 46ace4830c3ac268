import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AdamOptimizer,
  InProcessExecutor,
  createReplica,
  globalBatch,
  loadDataset,
  stepsPerEpoch,
  type Dataset,
  type PhaseName,
  type RunConfig,
  type TrainingExecutor,
} from '@dptrain/core';
import * as tf from '@tensorflow/tfjs';
import { ClusterExecutor, ClusterServer, spawnLocalWorkers, stopLocalWorkers } from '../../packages/coordinator/src/cluster/index.js';
import { dptrain, makeSceneDir, tinyClusterConfig, type Proc, waitForWorkers } from './fixtures.testutil.js';

/**
 * bf16 on the native backend keeps the worker-count and thread-count invariance of fp32: the same steps with 1 and 2
 * real native worker processes (1 oneDNN thread each) and in this process (2 threads) give the same weights, bit for
 * bit, and differ from the fp32 ones (bf16 really ran). A worker whose backend cannot run bf16 is refused at join.
 * Skipped without the native addon or a CPU with AVX512-BF16 / AMX.
 */
const STEPS = 10;
const B = 8;
const TOKEN = 'bf16-token';

async function bf16Native(): Promise<string | null> {
  try {
    const native = await import('@dptrain/backend-native');
    await native.registerNativeBackend();
    return native.nativeBf16Isa() === null ? 'this CPU has neither AVX512-BF16 nor AMX' : null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}
const skipReason = await bf16Native();
if (skipReason) console.warn(`[cluster] skipping bf16 cluster tests: ${skipReason}`);

let dir: string;
let dataset: Dataset;
let config: RunConfig;
let server: ClusterServer;
let children: ReturnType<typeof spawnLocalWorkers> = [];
const procs: Proc[] = [];
const w0: Partial<Record<PhaseName, Float32Array>> = {};

/**
 * STEPS Adam steps of the head phase on each executor, then STEPS of the fine-tune phase (block5's convolutions
 * train: bf16 gradients) on each; every phase starts from the same weights (w0). Head phases go first so that no
 * worker's frozen block5 has been fine-tuned by an earlier run when a head phase runs.
 */
async function trainAll(executors: TrainingExecutor[]): Promise<Float32Array[]> {
  const heads: Float32Array[] = [];
  for (const e of executors) heads.push(await steps(e, 'head'));
  const out: Float32Array[] = [];
  for (const [i, e] of executors.entries()) {
    const fineTune = await steps(e, 'fine_tune');
    expect(maxDiff(fineTune, w0.fine_tune!), 'fine-tuning moved the weights').toBeGreaterThan(1e-4);
    out.push(Float32Array.from([...heads[i]!, ...fineTune]));
  }
  return out;
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

async function steps(executor: TrainingExecutor, phase: PhaseName): Promise<Float32Array> {
  const begun = await executor.beginPhase(phase, w0[phase]?.slice());
  w0[phase] ??= begun.weights.slice();
  const weights = begun.weights.slice();
  const opt = new AdamOptimizer({ learningRate: phase === 'head' ? 1e-2 : 1e-3 });
  const samples = dataset.labelled;
  const spe = stepsPerEpoch(samples.length, B);
  for (let s = 0; s < STEPS; s++) {
    const epoch = Math.floor(s / spe);
    const batch = globalBatch(samples.length, B, config.seed, epoch, s % spe).map((i) => samples[i]!);
    const res = await executor.computeGradients(batch, { phase, epoch, step: s });
    opt.step(weights, res.gradients);
    await executor.setWeights(weights);
  }
  return weights;
}

async function inProcess(precision: 'fp32' | 'bf16'): Promise<Float32Array> {
  const native = await import('@dptrain/backend-native');
  await tf.setBackend(native.NATIVE_BACKEND_NAME);
  native.setNativeThreads(2);
  native.setNativePrecision(precision);
  native.loadAddon().clearCache();
  const local = new InProcessExecutor(await createReplica({ ...config, precision }, { dataset, gradientBuffers: 2 }), { microBatch: config.microBatch });
  try {
    return (await trainAll([local]))[0]!;
  } finally {
    await local.close();
    native.setNativePrecision('fp32');
  }
}

describe.skipIf(skipReason !== null)('bf16 cluster training (real native worker processes)', () => {
  beforeAll(async () => {
    dir = await makeSceneDir({ perClass: 12, test: 6 });
    dataset = loadDataset(dir);
    config = tinyClusterConfig(dir, [16, 16, 32, 32, 32], { batchSize: B, microBatch: 2, precision: 'bf16' });
    server = new ClusterServer({ token: TOKEN, config });
    const url = await server.listen();
    children = spawnLocalWorkers({ url, token: TOKEN, count: 2, dataDir: dir, args: ['--backend', 'native'], stdio: 'ignore' });
    await waitForWorkers(
      server,
      () => server.workers.length >= 2,
      () => 'the 2 workers did not join',
    );
  }, 240_000);

  afterAll(async () => {
    await server?.close();
    await stopLocalWorkers([...children, ...procs.map((p) => p.child)]);
    // no worker outlives the test
    for (const c of [...children, ...procs.map((p) => p.child)]) expect(c.exitCode !== null || c.signalCode !== null, `pid ${c.pid}`).toBe(true);
  });

  it('1 and 2 bf16 workers reach the same weights as one process with 2 threads, bit for bit, and not the fp32 ones', async () => {
    expect(server.workers.map((w) => w.info?.precision)).toEqual(['bf16', 'bf16']);
    const [one, two] = await trainAll([new ClusterExecutor({ server, maxWorkers: 1 }), new ClusterExecutor({ server, maxWorkers: 2 })]);
    expect(Array.from(two)).toEqual(Array.from(one));
    expect(Array.from(await inProcess('bf16'))).toEqual(Array.from(one));
    const fp32 = await inProcess('fp32');
    expect(Array.from(fp32)).not.toEqual(Array.from(one));
    expect(maxDiff(fp32, one)).toBeLessThan(0.1); // bf16 rounding, not another computation
  }, 300_000);

  it('refuses a worker whose backend cannot run bf16 at join, naming the backend', async () => {
    const p = dptrain(['worker', '--connect', server.url, '--data', dir, '--backend', 'cpu'], { DPTRAIN_TOKEN: TOKEN });
    procs.push(p);
    const code = await p.exited;
    expect(code).toBe(2);
    expect(p.output()).toMatch(/E_PRECISION/);
    expect(p.output()).toMatch(/cannot run this run's precision bf16: --precision bf16 runs on the native backend only; backend 'cpu'/);
    expect(server.rejected.get('E_PRECISION')).toBe(1);
    expect(server.workers.length).toBe(2);
  }, 120_000);
});
