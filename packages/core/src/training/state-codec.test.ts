import { describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { decodeState, encodeState } from './state-codec.js';
import { readCheckpoint, writeCheckpoint, type TrainingCheckpoint } from './checkpoint.js';
import { AdamOptimizer } from './optimizers.js';

describe('state codec and checkpoints', () => {
  it('round-trips nested values with Float32Arrays and non-finite numbers', () => {
    const value = { a: 1, b: [new Float32Array([1.5, -2, 3e-8]), { c: new Float32Array(0) }], d: -Infinity, e: 'x', n: null };
    const back = decodeState<typeof value>(encodeState(value));
    expect(back.a).toBe(1);
    expect(Array.from(back.b[0] as Float32Array)).toEqual(Array.from(new Float32Array([1.5, -2, 3e-8])));
    expect((back.b[1] as { c: Float32Array }).c).toBeInstanceOf(Float32Array);
    expect(back.d).toBe(-Infinity);
    expect(back.n).toBeNull();
  });

  it('rejects foreign and truncated buffers with E_CHECKPOINT', () => {
    expect(() => decodeState(Buffer.from('hello world, not a state'))).toThrow(/not a dptrain state/);
    const buf = encodeState({ w: new Float32Array(100) });
    expect(() => decodeState(buf.subarray(0, buf.length - 8))).toThrow(/truncated/);
  });

  it('writes checkpoints atomically (no temp file left) and reads them back', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dpt-ckpt-'));
    expect(await readCheckpoint(dir)).toBeUndefined();
    const opt = new AdamOptimizer();
    const w = new Float32Array([1, 2, 3]);
    opt.step(w, new Float32Array([0.1, 0.2, 0.3]));
    const ckpt: TrainingCheckpoint = {
      version: 1,
      phase: 'head',
      phaseDone: false,
      epoch: 2,
      stepInEpoch: 5,
      step: 17,
      spec: [{ name: 'dense/kernel', shape: [3], size: 3 }],
      weights: w,
      optimizer: opt.exportState(),
      callbacks: { earlyStopping: { best: 0.5, wait: 1, stoppedEpoch: -1, bestWeights: new Float32Array([9, 9, 9]) } },
      stopTraining: false,
      rng: { seed: 42, epoch: 2 },
      progress: { lossSum: 3, correct: 4, count: 5, elapsedMs: 6 },
      history: [],
      timings: { head: 100 },
      datasetHash: 'abc',
    };
    await writeCheckpoint(dir, ckpt);
    await writeCheckpoint(dir, { ...ckpt, step: 18 });
    expect(readdirSync(dir)).toEqual(['checkpoint.bin']);
    const back = await readCheckpoint(dir);
    expect(back?.step).toBe(18);
    expect(Array.from(back?.weights ?? [])).toEqual(Array.from(w));
    expect(Array.from(back?.optimizer.slots.v ?? [])).toEqual(Array.from(opt.exportState().slots.v ?? []));
    expect((back?.callbacks.earlyStopping as { bestWeights: Float32Array }).bestWeights[0]).toBe(9);
  });
});
