import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { isDptrainError } from '../errors.js';
import { createReplica } from './replica.js';
import { samplesOf, syntheticImages, tinyConfig } from './replica.testutil.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('createReplica (tiny-vgg on cpu)', () => {
  it('exposes the head phase spec and flat weights, and trains the head', async () => {
    const r = await createReplica(tinyConfig({ head: { units: 16, dropout: 0 } }), { images: syntheticImages });
    expect(r.spec.map((s) => s.name)).toEqual(['head_dense/kernel', 'head_dense/bias', 'head_logits/kernel', 'head_logits/bias']);
    expect(r.spec[0]!.shape).toEqual([8, 16]);
    const w0 = r.getWeights();
    expect(w0.length).toBe(8 * 16 + 16 + 16 * 3 + 3);
    const samples = samplesOf(6);
    let w = w0.slice();
    let first = 0;
    let last = 0;
    for (let step = 0; step < 40; step++) {
      const g = await r.computeGradients(samples, { phase: 'head', epoch: 0, step });
      expect(g.count).toBe(6);
      expect(g.gradients.length).toBe(w.length);
      if (step === 0) first = g.loss;
      last = g.loss;
      w = w.map((v, i) => v - 0.3 * g.gradients[i]!);
      r.setWeights(w);
    }
    expect(last).toBeLessThan(first * 0.7);
    expect(Array.from(r.getWeights())).toEqual(Array.from(w));
    const p = await r.predict(samples);
    expect(p.length).toBe(18);
    for (let i = 0; i < 6; i++) expect(p[i * 3]! + p[i * 3 + 1]! + p[i * 3 + 2]!).toBeCloseTo(1, 5);
    r.dispose();
  });

  it("tta 'flip' predicts the mean of an image and its mirror image: an image and its mirror get the same row", async () => {
    const S = 32;
    // sample 1 is the left-right mirror of sample 0 (and 3 of 2)
    const pixel = (base: number, y: number, x: number, c: number) => Math.sin(base * 3 + y * 0.7 + x * x * 0.05 + c) * 100;
    const images = {
      async loadBatch(samples: readonly { index: number }[]) {
        const d = new Float32Array(samples.length * S * S * 3);
        samples.forEach((s, i) => {
          const base = s.index >> 1;
          const mirror = (s.index & 1) === 1;
          for (let y = 0; y < S; y++)
            for (let x = 0; x < S; x++) for (let c = 0; c < 3; c++) d[((i * S + y) * S + x) * 3 + c] = pixel(base, y, mirror ? S - 1 - x : x, c);
        });
        return { data: d, shape: [samples.length, S, S, 3] };
      },
    };
    const rows = async (tta: 'none' | 'flip') => {
      const r = await createReplica(
        tinyConfig({ tta, backbone: { kind: 'tiny-vgg', inputSize: [S, S], tinyWidths: [4, 4, 8, 8, 8] }, head: { units: 16, dropout: 0 } }),
        { images },
      );
      const p = await r.predict(samplesOf(4));
      r.dispose();
      return [0, 1, 2, 3].map((i) => Array.from(p.subarray(i * 3, i * 3 + 3)));
    };
    const none = await rows('none');
    const flip = await rows('flip');
    const maxDiff = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
    expect(maxDiff(none[0]!, none[1]!)).toBeGreaterThan(1e-4); // the model is not mirror-symmetric by itself
    for (const [a, b] of [
      [0, 1],
      [2, 3],
    ] as const) {
      expect(maxDiff(flip[a]!, flip[b]!)).toBeLessThan(1e-6);
      // and it is the mean of the two plain predictions
      expect(
        maxDiff(
          flip[a]!,
          none[a]!.map((v, k) => 0.5 * (v + none[b]![k]!)),
        ),
      ).toBeLessThan(1e-6);
    }
  });

  it('gradientBuffers: reuses buffers in turn and gives the same gradients as new arrays', async () => {
    const cfg = tinyConfig({ head: { units: 16, dropout: 0 } });
    const fresh = await createReplica(cfg, { images: syntheticImages });
    const ring = await createReplica(cfg, { images: syntheticImages, gradientBuffers: 2 });
    const got: Float32Array[] = [];
    for (let step = 0; step < 3; step++) {
      const samples = samplesOf(2 + step);
      const a = await fresh.computeGradients(samples, { phase: 'head', epoch: 0, step });
      const b = await ring.computeGradients(samples, { phase: 'head', epoch: 0, step });
      expect(Array.from(b.gradients)).toEqual(Array.from(a.gradients));
      got.push(b.gradients);
    }
    expect(got[2]).toBe(got[0]); // the ring came round
    expect(got[1]).not.toBe(got[0]);
    fresh.dispose();
    ring.dispose();
  });

  it('predict keeps input order across chunks and groups (70 samples, chunk 16)', async () => {
    const r = await createReplica(tinyConfig(), { images: syntheticImages, cache: false });
    const all = samplesOf(70);
    const p = await r.predict(all);
    for (const i of [0, 15, 16, 63, 64, 69]) {
      const one = await r.predict([all[i]!]);
      for (let c = 0; c < 3; c++) expect(p[i * 3 + c]!).toBeCloseTo(one[c]!, 5);
    }
    r.dispose();
  });

  it('lets timers run between chunks of a long frozen pass (a worker keeps heartbeating)', async () => {
    const r = await createReplica(tinyConfig(), { images: syntheticImages, cache: false, chunkSize: 1 });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    try {
      await r.predict(samplesOf(40));
      await r.computeGradients(samplesOf(20), { phase: 'head', epoch: 0, step: 0 });
    } finally {
      clearInterval(timer);
      r.dispose();
    }
    // images come from settled promises (microtasks only): without an explicit turn of the event loop per
    // chunk, no timer would fire until the whole pass is over
    expect(ticks).toBeGreaterThanOrEqual(20);
  });

  it('is reproducible: same config and seed → same base hash and initial weights; another seed differs', async () => {
    const a = await createReplica(tinyConfig(), { images: syntheticImages });
    const b = await createReplica(tinyConfig(), { images: syntheticImages });
    const c = await createReplica(tinyConfig({ seed: 7 }), { images: syntheticImages });
    expect(a.baseHash).toMatch(/^[0-9a-f]{64}$/);
    expect(b.baseHash).toBe(a.baseHash);
    expect(Array.from(b.getWeights())).toEqual(Array.from(a.getWeights()));
    expect(c.baseHash).not.toBe(a.baseHash);
    [a, b, c].forEach((r) => r.dispose());
  });

  it('head pooling "flatten" feeds the flattened feature map to the dense layer', async () => {
    const big: typeof syntheticImages = {
      async loadBatch(samples) {
        return { data: new Float32Array(samples.length * 64 * 64 * 3).map((_, j) => Math.sin(j)), shape: [samples.length, 64, 64, 3] };
      },
    };
    const cfg = tinyConfig({ head: { pooling: 'flatten', units: 5, dropout: 0 } });
    const r = await createReplica({ ...cfg, backbone: { ...cfg.backbone, inputSize: [64, 64] } }, { images: big });
    expect(r.spec[0]!.shape).toEqual([2 * 2 * 8, 5]);
    const g = await r.computeGradients(samplesOf(2), { phase: 'head', epoch: 0, step: 0 });
    expect(g.gradients.length).toBe(32 * 5 + 5 + 5 * 3 + 3);
    r.dispose();
  });

  it('dispose releases every weight (full model and phase sub-models)', async () => {
    const before = tf.memory().numTensors;
    const r = await createReplica(tinyConfig(), { images: syntheticImages });
    await r.setPhase('fine_tune');
    await r.computeGradients(samplesOf(3), { phase: 'fine_tune', epoch: 0, step: 0 });
    expect(tf.memory().numTensors).toBeGreaterThan(before);
    r.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects weights of the wrong length and out-of-range labels', async () => {
    const r = await createReplica(tinyConfig(), { images: syntheticImages });
    let err: unknown;
    try {
      r.setWeights(new Float32Array(3));
    } catch (e) {
      err = e;
    }
    expect(isDptrainError(err, 'E_GRADIENT_SHAPE')).toBe(true);
    const bad = { ...samplesOf(1)[0]!, label: 7 };
    await expect(r.computeGradients([bad], { phase: 'head', epoch: 0, step: 0 })).rejects.toThrow(/label 7/);
    r.dispose();
  });

  it('gradient is the mean over samples: sharding a batch (with dropout) gives the same result', async () => {
    const r = await createReplica(tinyConfig(), { images: syntheticImages });
    await r.setPhase('fine_tune');
    const all = samplesOf(6);
    const ctx = { phase: 'fine_tune' as const, epoch: 1, step: 17 };
    const full = await r.computeGradients(all, ctx);
    const a = await r.computeGradients(all.slice(0, 2), ctx);
    const b = await r.computeGradients(all.slice(2), ctx);
    const merged = full.gradients.map((_, i) => (a.gradients[i]! * 2 + b.gradients[i]! * 4) / 6);
    let maxDiff = 0;
    let maxAbs = 0;
    full.gradients.forEach((v, i) => {
      maxDiff = Math.max(maxDiff, Math.abs(v - merged[i]!));
      maxAbs = Math.max(maxAbs, Math.abs(v));
    });
    expect(maxAbs).toBeGreaterThan(0);
    expect(maxDiff).toBeLessThan(1e-5 * Math.max(1, maxAbs));
    expect((a.loss * 2 + b.loss * 4) / 6).toBeCloseTo(full.loss, 5);
    // A different step draws a different dropout mask.
    const other = await r.computeGradients(all, { ...ctx, step: 18 });
    expect(other.loss).not.toBeCloseTo(full.loss, 6);
    r.dispose();
  });

  it('phase 2 unfreezes block5 (boundary block4_pool) and keeps the head weights', async () => {
    const r = await createReplica(tinyConfig(), { images: syntheticImages });
    const head = r.getWeights();
    await r.setPhase('fine_tune');
    expect(r.split?.boundary).toBe('block4_pool');
    expect(r.spec.map((s) => s.name).slice(0, 6)).toEqual([
      'block5_conv1/kernel',
      'block5_conv1/bias',
      'block5_conv2/kernel',
      'block5_conv2/bias',
      'block5_conv3/kernel',
      'block5_conv3/bias',
    ]);
    const w = r.getWeights();
    expect(Array.from(w.subarray(w.length - head.length))).toEqual(Array.from(head));
    r.dispose();
  });

  it('no tensor leak: tf.memory().numTensors is the same after step 10 and step 100', async () => {
    const r = await createReplica(tinyConfig(), { images: syntheticImages });
    await r.setPhase('fine_tune');
    const samples = samplesOf(4);
    let w = r.getWeights();
    let at10 = -1;
    for (let step = 1; step <= 100; step++) {
      const g = await r.computeGradients(samples, { phase: 'fine_tune', epoch: Math.floor(step / 10), step });
      w = w.map((v, i) => v - 0.01 * g.gradients[i]!);
      r.setWeights(w);
      if (step % 25 === 0) await r.predict(samples.slice(0, 2));
      if (step === 10) at10 = tf.memory().numTensors;
    }
    expect(at10).toBeGreaterThan(0);
    expect(tf.memory().numTensors).toBe(at10);
    r.dispose();
  });
});
