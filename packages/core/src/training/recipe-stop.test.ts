import { describe, expect, it, beforeAll } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';

import { EventBus } from '../events/bus.js';
import { InProcessExecutor } from './in-process-executor.js';
import { runTraining } from './recipe.js';
import { readCheckpoint } from './checkpoint.js';
import { loadRunModel } from './run-model.js';
import { LinearReplica, linearConfig, linearTrainData as makeData } from './linear-replica.testutil.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

// checkpoints far apart: without the stop's own checkpoint, a stop would lose up to 49 steps
const cfg = linearConfig({ epochs: 4, learningRate: 0.5 }, { epochs: 2, learningRate: 0.05 }, { checkpointEvery: 50 });

describe('runTraining stopSignal (Ctrl-C, SIGTERM)', () => {
  it('finishes the step in flight, checkpoints exactly there, and a resume reproduces the straight run', async () => {
    const data = makeData(45, 15); // 6 steps per epoch, 36 in all
    const straightDir = mkdtempSync(path.join(tmpdir(), 'dpt-stop-straight-'));
    await runTraining({ config: cfg, runDir: straightDir, data, executor: new InProcessExecutor(new LinearReplica()) });
    const straight = await loadRunModel(straightDir);

    for (const k of [5, 6, 27]) {
      const dir = mkdtempSync(path.join(tmpdir(), `dpt-stop${k}-`));
      const stop = new AbortController();
      // the signal arrives while step k is being computed (ctx.step counts from 0)
      const executor = new InProcessExecutor(new LinearReplica());
      const compute = executor.computeGradients.bind(executor);
      executor.computeGradients = (samples, ctx) => {
        if (ctx.step === k - 1) stop.abort();
        return compute(samples, ctx);
      };
      const first = await runTraining({ config: cfg, runDir: dir, data, executor, stopSignal: stop.signal });
      expect(first).toMatchObject({ halted: true, stopped: true, steps: k });
      expect((await readCheckpoint(dir))?.step).toBe(k);
      const second = await runTraining({ config: cfg, runDir: dir, data, executor: new InProcessExecutor(new LinearReplica()), resume: true });
      expect(second.steps).toBe(36);
      expect(Array.from((await loadRunModel(dir)).weights)).toEqual(Array.from(straight.weights));
      const strip = (s: string) => s.replace(/"epochMs":[0-9.e+-]+/g, '');
      expect(strip(readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8'))).toBe(strip(readFileSync(path.join(straightDir, 'metrics.jsonl'), 'utf8')));
    }
  });

  it('a stop after the last step returns before evaluation, with the phase checkpoint in place', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dpt-stop-end-'));
    const stop = new AbortController();
    const bus = new EventBus();
    bus.on((e) => {
      if (e.type === 'epoch_completed' && e.phase === 'fine_tune' && e.epoch === 1) stop.abort();
    });
    const r = await runTraining({
      config: cfg,
      runDir: dir,
      data: makeData(45, 15),
      bus,
      executor: new InProcessExecutor(new LinearReplica()),
      stopSignal: stop.signal,
    });
    expect(r).toMatchObject({ halted: true, stopped: true, steps: 36 });
    expect(await readCheckpoint(dir)).toMatchObject({ phase: 'fine_tune', phaseDone: true, step: 36 });
  });
});
