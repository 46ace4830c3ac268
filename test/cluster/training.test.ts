import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AdamOptimizer,
  InProcessExecutor,
  createReplica,
  globalBatch,
  runTrainingStep,
  loadDataset,
  stepsPerEpoch,
  type Dataset,
  type RunConfig,
  type TrainingExecutor,
  type GradientPrecision,
} from '@dptrain/core';
import * as tf from '@tensorflow/tfjs';
import { ClusterExecutor, ClusterServer, spawnLocalWorkers, stopLocalWorkers } from '../../packages/coordinator/src/cluster/index.js';
import { makeSceneDir, tinyLoopConfig, waitForWorkers } from './fixtures.testutil.js';

/**
 * Real worker processes on loopback, driven by an in-test coordinator: the same 20 Adam steps with 1, 2, 3 and 4
 * workers (global batch B split among them) must give the same weights, bit for bit, as one process does: the
 * gradients are averaged over micro-batches of 2 (tinyLoopConfig) along a fixed tree, whatever the worker count. When the
 * workers' slices cut micro-batches (micro-batch 0: each slice at once), the results agree within REL_TOL.
 * fp16 gradients must reach the same accuracy.
 */
const STEPS = 20;
const B = 8;
const TOKEN = 'equivalence-token';
// Tolerance without the tree: summation order of the weighted mean differs between N (fp32 rounding, amplified
// by Adam's division by sqrt(v)); observed differences are ~1e-6 relative.
const REL_TOL = 1e-3;

let dir: string;
let dataset: Dataset;
let config: RunConfig;
let server: ClusterServer;
let children: ReturnType<typeof spawnLocalWorkers> = [];
let w0: Float32Array;

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(a[i]!));
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
  }
  return diff / scale;
}

async function train(
  n: number,
  precision: GradientPrecision,
  microBatch?: number,
): Promise<{ weights: Float32Array; workersPerStep: number[]; executor: ClusterExecutor }> {
  const executor = new ClusterExecutor({ server, maxWorkers: n, gradientPrecision: precision, bucketFloats: 97 });
  // another micro-batch than the run config's travels in the step messages (as an agent passes its coordinator's)
  const stepping: TrainingExecutor =
    microBatch === undefined
      ? executor
      : {
          beginPhase: (p, w) => executor.beginPhase(p, w),
          computeGradients: (batch, ctx) => executor.computeGradients(batch, ctx, microBatch),
          setWeights: (w) => executor.setWeights(w),
          predict: (batch, task) => executor.predict(batch, task),
          close: () => executor.close(),
        };
  return { ...(await trainWith(stepping)), executor };
}

async function trainWith(executor: TrainingExecutor, clipNorm = 0): Promise<{ weights: Float32Array; workersPerStep: number[] }> {
  const begun = await executor.beginPhase('head', w0 ? w0.slice() : undefined);
  w0 ??= begun.weights.slice();
  const weights = begun.weights.slice();
  const opt = new AdamOptimizer({ learningRate: 3e-2 });
  const samples = dataset.labelled;
  const spe = stepsPerEpoch(samples.length, B);
  const workersPerStep: number[] = [];
  for (let s = 0; s < STEPS; s++) {
    const epoch = Math.floor(s / spe);
    const batch = globalBatch(samples.length, B, config.seed, epoch, s % spe).map((i) => samples[i]!);
    // the cluster's pipelined trainStep (buckets of 97 floats, see train), the in-process executor's gradients + step
    const res = await runTrainingStep(executor, batch, { phase: 'head', epoch, step: s }, { weights, optimizer: opt, clipNorm });
    expect(res.count).toBe(batch.length);
    workersPerStep.push(res.workers.length);
  }
  return { weights, workersPerStep };
}

async function accuracy(executor: ClusterExecutor): Promise<number> {
  const samples = dataset.labelled;
  const probs = await executor.predict(samples, 'evaluate');
  const c = probs.length / samples.length;
  let ok = 0;
  samples.forEach((s, i) => {
    const row = probs.subarray(i * c, (i + 1) * c);
    if (row.indexOf(Math.max(...row)) === s.label) ok++;
  });
  return ok / samples.length;
}

beforeAll(async () => {
  dir = await makeSceneDir({ perClass: 12, test: 6 });
  dataset = loadDataset(dir);
  config = tinyLoopConfig(dir);
  server = new ClusterServer({ token: TOKEN, config });
  const url = await server.listen();
  children = spawnLocalWorkers({ url, token: TOKEN, count: 4, dataDir: dir, args: ['--backend', 'cpu'], stdio: 'ignore' });
  await waitForWorkers(
    server,
    () => server.workers.length >= 4,
    () => 'the 4 workers did not join',
  );
}, 240_000);

afterAll(async () => {
  await server?.close();
  await stopLocalWorkers(children);
});

describe('cluster training (4 real worker processes)', () => {
  let ref: Float32Array;
  let refAcc: number;

  it('1, 2, 3 and 4 workers reach the same weights after 20 steps as one process, bit for bit', async () => {
    const one = await train(1, 'fp32');
    ref = one.weights;
    refAcc = await accuracy(one.executor);
    expect(one.workersPerStep.every((n) => n === 1)).toBe(true);
    expect(maxRelDiff(w0, ref)).toBeGreaterThan(1e-3); // it did train
    for (const n of [2, 3, 4]) {
      const run = await train(n, 'fp32');
      expect(Math.max(...run.workersPerStep)).toBe(n); // (the short last batch of an epoch may need fewer)
      expect(Array.from(run.weights), `${n} workers`).toEqual(Array.from(ref));
      // every sample of each epoch counted once
      for (const e of run.executor.ledger.summary()) expect(e.duplicates).toBe(0);
    }
    // the same steps in this process (dptrain train, single --workers 0): same backend (cpu), same tree
    await tf.setBackend('cpu');
    const local = new InProcessExecutor(await createReplica(config, { dataset, gradientBuffers: 2 }), { microBatch: config.microBatch });
    try {
      expect(Array.from((await trainWith(local)).weights)).toEqual(Array.from(ref));
    } finally {
      await local.close();
    }
  });

  it('--clip-norm through the pipelined update (buckets of 97 floats) gives the one-process clipped weights, bit for bit', async () => {
    const clip = 0.05;
    const two = await trainWith(new ClusterExecutor({ server, maxWorkers: 2, bucketFloats: 97 }), clip);
    await tf.setBackend('cpu');
    const local = new InProcessExecutor(await createReplica(config, { dataset, gradientBuffers: 2 }), { microBatch: config.microBatch });
    try {
      expect(Array.from(two.weights)).toEqual(Array.from((await trainWith(local, clip)).weights));
    } finally {
      await local.close();
    }
    expect(maxRelDiff(two.weights, ref)).toBeGreaterThan(0); // the clip did act
  });

  it('without the micro-batch tree (each slice at once), 2 and 4 workers agree within a tolerance', async () => {
    const two = await train(2, 'fp32', 0);
    const four = await train(4, 'fp32', 0);
    expect(maxRelDiff(ref, two.weights)).toBeLessThan(REL_TOL);
    expect(maxRelDiff(ref, four.weights)).toBeLessThan(REL_TOL);
    expect(maxRelDiff(two.weights, four.weights)).toBeGreaterThan(0); // it is a tolerance, not identity
  });

  it('with fewer micro-batches than workers, the others sit the step out, and the coordinator says so once', async () => {
    const logs: string[] = [];
    const off = server.bus.on((e) => {
      if (e.type === 'log' && e.level === 'warn') logs.push(e.message);
    });
    try {
      const run = await train(4, 'fp32', 4); // a batch of 8: 2 micro-batches of 4
      expect(Math.max(...run.workersPerStep)).toBe(2);
      expect(logs.filter((m) => m.includes('workers take part'))).toEqual([expect.stringMatching(/only 2 of 4 workers .* --micro-batch 2/)]);
    } finally {
      off();
    }
  });

  it.each(['fp16', 'bf16'] as const)('%s gradients reach the accuracy of fp32', async (precision) => {
    const half = await train(2, precision);
    const acc16 = await accuracy(half.executor);
    expect(refAcc).toBeGreaterThan(0.5); // well above chance (1/3): the comparison means something
    expect(Math.abs(acc16 - refAcc)).toBeLessThanOrEqual(0.1);
    expect(maxRelDiff(ref, half.weights)).toBeLessThan(0.05);
    expect(maxRelDiff(ref, half.weights)).toBeGreaterThan(0); // the gradients did travel rounded
  });
});
