import { describe, expect, it, beforeAll } from 'vitest';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { RunConfig } from '../config.js';
import { EventBus } from '../events/bus.js';
import type { RunEvent } from '../events/types.js';
import { InProcessExecutor } from './in-process-executor.js';
import { runTraining } from './recipe.js';
import { readCheckpoint } from './checkpoint.js';
import { isDptrainError } from '../errors.js';
import { loadRunModel } from './run-model.js';
import { C, D, LinearReplica, linearConfig, linearTrainData as makeData } from './linear-replica.testutil.js';
import { bucketRanges, bucketSumOfSquares, normFromBucketSums } from './buckets.js';
import { clipScale, scaleRange } from './gradient-norm.js';
import { checkStepResult } from './training-step.js';
import type { TrainingExecutor } from './types.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function config(over: Partial<RunConfig> = {}): RunConfig {
  return linearConfig({ epochs: 3, learningRate: 0.05 }, { epochs: 2, learningRate: 0.01 }, { checkpointEvery: 4, ...over });
}

describe('runTraining (recipe driver)', () => {
  it('runs both phases, learns, and writes model, metrics.jsonl, report.json and submission.csv', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dpt-recipe-'));
    const data = makeData(45, 15, 7); // 45 / 8 -> 6 steps per epoch, last batch of 5
    const events: RunEvent[] = [];
    const bus = new EventBus();
    bus.on((e) => events.push(e));
    let t = 1000;
    const clock = { now: () => (t += 5) };
    const res = await runTraining({
      config: config(),
      runDir: dir,
      data,
      executor: new InProcessExecutor(new LinearReplica()),
      bus,
      clock,
      backend: { name: 'cpu', device: 'test' },
    });
    expect(res.halted).toBe(false);
    expect(res.steps).toBe(5 * 6);
    const lines = readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { phase: string; valAccuracy: number });
    expect(lines.map((l) => l.phase)).toEqual(['head', 'head', 'head', 'fine_tune', 'fine_tune']);
    const report = JSON.parse(readFileSync(path.join(dir, 'report.json'), 'utf8')) as {
      validation: { accuracy: number; confusion: number[][]; perClass: unknown[] };
      backend: string;
      timingsMs: Record<string, number>;
    };
    expect(report.validation.accuracy).toBeGreaterThan(0.8);
    expect(report.validation.confusion.flat().reduce((a, b) => a + b, 0)).toBe(15);
    expect(report.validation.perClass).toHaveLength(3);
    expect(report.backend).toBe('cpu');
    expect(report.timingsMs.head).toBeGreaterThan(0);
    const sub = readFileSync(path.join(dir, 'submission.csv'), 'utf8').trim().split('\n');
    expect(sub[0]).toBe('image_name,label');
    expect(sub.slice(1).map((l) => l.split(',')[0])).toEqual(data.test.map((s) => s.name));
    expect(sub.slice(1).every((l) => /^[0-2]$/.test(l.split(',')[1] ?? ''))).toBe(true);
    const model = await loadRunModel(dir);
    expect(model.meta.phase).toBe('fine_tune');
    expect(model.weights.length).toBe(D + D * C + C);
    // events: every step once, sample counts add up to the epoch
    const steps = events.filter((e): e is Extract<RunEvent, { type: 'step_completed' }> => e.type === 'step_completed');
    expect(steps).toHaveLength(30);
    expect(steps.filter((s) => s.phase === 'head' && s.epoch === 0).reduce((a, s) => a + s.samples, 0)).toBe(45);
    expect(events.filter((e) => e.type === 'checkpoint_written').length).toBeGreaterThanOrEqual(7);
    expect(events.at(-1)?.type).toBe('run_completed');
    expect(events.every((e) => e.time > 1000)).toBe(true);
  });

  it('resume: stopping at step k and resuming gives the same weights as a straight run', async () => {
    const data = makeData(45, 15, 3);
    const cfg = config({ checkpointEvery: 1, reduceLrPatience: 1, headPhase: { epochs: 6, learningRate: 1.0 } });
    const straightDir = mkdtempSync(path.join(tmpdir(), 'dpt-straight-'));
    await runTraining({ config: cfg, runDir: straightDir, data, executor: new InProcessExecutor(new LinearReplica()) });
    const straight = await loadRunModel(straightDir);
    // the run exercises callback state: ReduceLROnPlateau changed the head phase's rate at least once
    const lrs = readFileSync(path.join(straightDir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { learningRate: number }).learningRate);
    expect(new Set(lrs).size).toBeGreaterThan(2);
    for (const k of [4, 6, 40]) {
      const dir = mkdtempSync(path.join(tmpdir(), `dpt-resume${k}-`));
      const first = await runTraining({ config: cfg, runDir: dir, data, executor: new InProcessExecutor(new LinearReplica()), haltAfterSteps: k });
      expect(first.halted).toBe(true);
      expect((await readCheckpoint(dir))?.step).toBe(k);
      // a fresh replica (as after a crash), resumed
      const second = await runTraining({ config: cfg, runDir: dir, data, executor: new InProcessExecutor(new LinearReplica()), resume: true });
      expect(second.steps).toBe(48);
      const resumed = await loadRunModel(dir);
      expect(Array.from(resumed.weights)).toEqual(Array.from(straight.weights));
      expect(stripMs(readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8'))).toBe(stripMs(readFileSync(path.join(straightDir, 'metrics.jsonl'), 'utf8')));
    }
  });

  it('resume refuses a changed run, listing what differs, and accepts safe changes (epochs, checkpoint frequency)', async () => {
    const data = makeData(45, 15, 3);
    const cfg = config({ checkpointEvery: 1 });
    const dir = mkdtempSync(path.join(tmpdir(), 'dpt-resume-fp-'));
    await runTraining({ config: cfg, runDir: dir, data, executor: new InProcessExecutor(new LinearReplica()), haltAfterSteps: 3 });
    const resume = (c: RunConfig) =>
      runTraining({ config: c, runDir: dir, data, executor: new InProcessExecutor(new LinearReplica()), resume: true, haltAfterSteps: 4 });
    const refused = async (c: RunConfig): Promise<string> => {
      const e = await resume(c).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(isDptrainError(e, 'E_CHECKPOINT'), String(e)).toBe(true);
      return (e as Error).message;
    };
    const msg = await refused(config({ checkpointEvery: 1, batchSize: 16, seed: 7, preprocess: 'tf' }));
    expect(msg).toMatch(/cannot resume: 3 settings differ/);
    expect(msg).toContain('batchSize: 8 → 16');
    expect(msg).toContain('seed: 42 → 7');
    expect(msg).toContain('preprocess: "caffe" → "tf"');
    expect(await refused(config({ checkpointEvery: 1, headPhase: { epochs: 3, learningRate: 0.5 } }))).toContain('headPhase.learningRate: 0.05 → 0.5');
    expect(await refused(config({ checkpointEvery: 1, head: { pooling: 'gap', units: 64, dropout: 0.5 } }))).toContain('head.units: 256 → 64');
    expect(await refused(config({ checkpointEvery: 1, optimizer: 'sgd' }))).toContain('optimizer: "adam" → "sgd"');
    expect(await refused(config({ checkpointEvery: 1, microBatch: 4 }))).toContain('microBatch: 8 → 4');
    expect((await readCheckpoint(dir))?.step).toBe(3); // nothing lost by the refusals
    // safe: more epochs, another checkpoint frequency, another data directory
    const ok = await resume(config({ checkpointEvery: 2, dataDir: '/elsewhere', headPhase: { epochs: 5, learningRate: 0.05 } }));
    expect(ok.halted).toBe(true);
    expect(ok.steps).toBe(4);
  });

  it('early stopping ends a phase and restores the best weights; an uneven data set still counts each sample once', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dpt-es-'));
    const data = makeData(13, 6, 0);
    const events: RunEvent[] = [];
    const bus = new EventBus();
    bus.on((e) => events.push(e));
    const res = await runTraining({
      config: config({ patience: 1, headPhase: { epochs: 30, learningRate: 0.5 }, fineTunePhase: { epochs: 0, learningRate: 1e-5 } }),
      runDir: dir,
      data,
      bus,
      executor: new InProcessExecutor(new LinearReplica()),
    });
    const epochs = events.filter((e) => e.type === 'epoch_completed');
    expect(epochs.length).toBeLessThan(30);
    expect(events.some((e) => e.type === 'early_stopping' && e.stopped)).toBe(true);
    expect(res.steps).toBe(epochs.length * 2);
    expect(existsSync(path.join(dir, 'submission.csv'))).toBe(false);
    const best = Math.max(...epochs.map((e) => (e as { valAccuracy: number }).valAccuracy));
    expect(res.report?.validation?.accuracy).toBe(best);
  });

  it('does not leak tensors across steps', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dpt-leak-'));
    const data = makeData(40, 8, 0);
    const counts: number[] = [];
    const bus = new EventBus();
    bus.on((e) => {
      if (e.type === 'step_completed' && (e.step === 10 || e.step === 100)) counts.push(tf.memory().numTensors);
    });
    await runTraining({
      config: config({ batchSize: 4, headPhase: { epochs: 10, learningRate: 0.01 }, fineTunePhase: { epochs: 0, learningRate: 1e-5 }, patience: 100 }),
      runDir: dir,
      data,
      bus,
      executor: new InProcessExecutor(new LinearReplica()),
    });
    expect(counts).toHaveLength(2);
    expect(counts[1]).toBe(counts[0]);
  });
});

function stripMs(s: string): string {
  return s.replace(/"epochMs":[-0-9.e]+/g, '"epochMs":0');
}

describe('runTraining learning-rate schedules', () => {
  it('every step runs at the scheduled rate (warmup then cosine in phase 1, warmup then constant in phase 2) and resumes on it', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dpt-recipe-lr-'));
    const data = makeData(40, 8, 2); // 5 steps per epoch
    const cfg = config({ lrSchedule: 'cosine', warmupEpochs: 1, minLr: 0.001, fineTuneLrSchedule: 'constant', patience: 99 });
    const run = async (haltAfterSteps?: number, resume = false) => {
      const events: RunEvent[] = [];
      const bus = new EventBus();
      bus.on((e) => events.push(e));
      await runTraining({
        config: cfg,
        runDir: dir,
        data,
        executor: new InProcessExecutor(new LinearReplica()),
        bus,
        resume,
        ...(haltAfterSteps ? { haltAfterSteps } : {}),
      });
      return events.filter((e): e is Extract<RunEvent, { type: 'step_completed' }> => e.type === 'step_completed');
    };
    const steps = await run();
    expect(steps).toHaveLength(25);
    const head = steps.filter((s) => s.phase === 'head');
    head.forEach((s, k) => {
      const want = k < 5 ? (0.05 * (k + 1)) / 5 : 0.001 + (0.05 - 0.001) * 0.5 * (1 + Math.cos((Math.PI * (k - 5)) / 10));
      expect(s.learningRate).toBeCloseTo(want, 10);
    });
    // phase 2 inherits the warmup (no --fine-tune-warmup-epochs), then stays constant
    const fine = steps.filter((s) => s.phase === 'fine_tune').map((s) => s.learningRate);
    fine.forEach((lr, k) => expect(lr).toBeCloseTo(k < 5 ? (0.01 * (k + 1)) / 5 : 0.01, 12));
    // metrics.jsonl: each epoch line lists its steps' rates
    const perEpoch = readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { stepLearningRates: number[] }).stepLearningRates);
    expect(perEpoch.flat()).toEqual(steps.map((s) => s.learningRate));
    // halted mid-epoch and resumed: the same rates from there on
    await run(8); // checkpoints every 4 steps: resumes at step 8, mid-epoch
    const resumed = await run(undefined, true);
    expect(resumed.map((s) => s.learningRate)).toEqual(steps.slice(8).map((s) => s.learningRate));
    // the epoch cut by the halt still lists all of its steps' rates after the resume
    const again = readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { stepLearningRates: number[] }).stepLearningRates);
    expect(again).toEqual(perEpoch);
  });
});

describe('runTraining --clip-norm', () => {
  /** An executor whose gradient at step 0 is `spike` times too large (a bad batch). */
  function spiky(spike: number): InProcessExecutor {
    const inner = new InProcessExecutor(new LinearReplica());
    const compute = inner.computeGradients.bind(inner);
    inner.computeGradients = async (samples, ctx) => {
      const r = await compute(samples, ctx);
      if (ctx.step === 0) r.gradients = r.gradients.map((x) => x * spike);
      return r;
    };
    return inner;
  }

  async function finalWeights(spike: number, clipNorm: number): Promise<Float32Array> {
    const dir = mkdtempSync(path.join(tmpdir(), 'dpt-clip-'));
    await runTraining({
      config: config({ clipNorm, headPhase: { epochs: 2, learningRate: 0.05 }, fineTunePhase: { epochs: 0, learningRate: 0.01 } }),
      runDir: dir,
      data: makeData(45, 15, 3),
      executor: spiky(spike),
      bus: new EventBus(),
      backend: { name: 'cpu', device: 'test' },
    });
    return (await loadRunModel(dir)).weights;
  }

  it('clips the averaged gradient before Adam: a 1e4x spike at step 0 no longer changes the run', async () => {
    const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
    const plain = await finalWeights(1, 0);
    const spiked = await finalWeights(1e4, 0);
    expect(maxDiff(plain, spiked)).toBeGreaterThan(1e-2); // without clipping the spike dominates Adam's second moment
    const plainClipped = await finalWeights(1, 1e-3);
    const spikedClipped = await finalWeights(1e4, 1e-3);
    expect(maxDiff(plainClipped, spikedClipped)).toBeLessThan(1e-5);
    expect(maxDiff(plain, plainClipped)).toBeGreaterThan(0); // the clip did act
  });

  it("uses the executor's own trainStep when it has one (bucket by bucket here), with the same final weights", async () => {
    const cfg = config({ clipNorm: 0.05, headPhase: { epochs: 2, learningRate: 0.05 }, fineTunePhase: { epochs: 1, learningRate: 0.01, unfreeze: 'x' } });
    const run = async (executor: InProcessExecutor) => {
      const dir = mkdtempSync(path.join(tmpdir(), 'dpt-trainstep-'));
      await runTraining({ config: cfg, runDir: dir, data: makeData(45, 15, 3), executor, bus: new EventBus(), backend: { name: 'cpu', device: 'test' } });
      return (await loadRunModel(dir)).weights;
    };
    const plain = await run(new InProcessExecutor(new LinearReplica()));
    // an executor that updates range by range itself: the clip scale from per-bucket sums, then beginStep + stepRange
    let calls = 0;
    const ranged = new InProcessExecutor(new LinearReplica()) as InProcessExecutor & { trainStep: NonNullable<TrainingExecutor['trainStep']> };
    ranged.trainStep = async (samples, ctx, update) => {
      calls++;
      const { gradients, ...rest } = await ranged.computeGradients(samples, ctx);
      checkStepResult(gradients.length, rest.loss, update.weights.length, ctx.step);
      const scale = update.clipNorm > 0 ? clipScale(normFromBucketSums(bucketSumOfSquares(gradients)), update.clipNorm) : 1;
      update.optimizer.beginStep();
      for (const r of bucketRanges(gradients.length, 5)) {
        scaleRange(gradients, scale, r.start, r.end);
        update.optimizer.stepRange(update.weights.subarray(r.start, r.end), gradients.subarray(r.start, r.end), r.start);
      }
      await ranged.setWeights(update.weights);
      return rest;
    };
    const viaTrainStep = await run(ranged);
    expect(calls).toBeGreaterThan(10);
    expect(Array.from(viaTrainStep)).toEqual(Array.from(plain));
  });
});
