import { describe, expect, it, beforeAll } from 'vitest';
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { InProcessExecutor } from './in-process-executor.js';
import { runTraining } from './recipe.js';
import { CHECKPOINT_FILE, readCheckpoint } from './checkpoint.js';
import { loadRunModel } from './run-model.js';
import { LinearReplica, linearConfig, linearTrainData } from './linear-replica.testutil.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

// Written by the recipe as it was when BestCheckpoint still kept a copy of the best weights in its state: the run
// below, halted after step 15 (head phase, epoch 3, step 3 of 6). The file is never regenerated.
const FIXTURE = fileURLToPath(new URL('./fixtures/checkpoint-v2-best-weights.bin', import.meta.url));
const cfg = linearConfig({ epochs: 4, learningRate: 1.0 }, { epochs: 2, learningRate: 0.01 }, { checkpointEvery: 1, reduceLrPatience: 1 });

describe('checkpoints written before the fit-loop callbacks changed', () => {
  it('still load, and resuming one gives the weights of a straight run, bit for bit', async () => {
    const data = linearTrainData(45, 15, 3);
    const dir = mkdtempSync(path.join(tmpdir(), 'dpt-ckpt-compat-'));
    copyFileSync(FIXTURE, path.join(dir, CHECKPOINT_FILE));
    const old = await readCheckpoint(dir);
    expect(old).toMatchObject({ version: 2, phase: 'head', epoch: 2, stepInEpoch: 3, step: 15 });
    // the old state: BestCheckpoint's copy of the weights, which nothing reads any more
    expect((old?.callbacks.bestCheckpoint as { bestWeights?: Float32Array }).bestWeights).toBeInstanceOf(Float32Array);

    const resumed = await runTraining({
      config: cfg,
      runDir: dir,
      data,
      executor: new InProcessExecutor(new LinearReplica()),
      resume: true,
      tensorboard: false,
    });
    expect(resumed.steps).toBe(36);
    const straightDir = mkdtempSync(path.join(tmpdir(), 'dpt-ckpt-compat-straight-'));
    await runTraining({ config: cfg, runDir: straightDir, data, executor: new InProcessExecutor(new LinearReplica()), tensorboard: false });
    expect(Array.from((await loadRunModel(dir)).weights)).toEqual(Array.from((await loadRunModel(straightDir)).weights));
    // the checkpoints written now carry no weights copy in BestCheckpoint's state
    expect((await readCheckpoint(dir))?.callbacks.bestCheckpoint).toEqual({ best: expect.any(Number), bestEpoch: expect.any(Number) });
  });
});
