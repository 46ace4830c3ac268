import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { nativeKernelStats } from './backend.js';
import { int, nativeOrSkipReason, onBoth, prng, randomData, relErr } from './native-backend.testutil.js';

const skipReason = await nativeOrSkipReason();

describe.skipIf(skipReason !== null)('native matmul kernels vs tfjs cpu', () => {
  const r = prng(5);
  const shapes = Array.from({ length: 6 }, (_, i) => ({
    m: i === 0 ? 1 : int(r, 1, 16),
    k: int(r, 1, 40),
    n: int(r, 1, 12),
    ta: i % 2 === 1,
    tb: i % 3 === 1,
  }));

  it.each(shapes.map((s) => [`${s.m}x${s.k}x${s.n} ta=${s.ta} tb=${s.tb}`, s] as const))('matMul and its gradients: %s', async (_l, s) => {
    const a = randomData(r, s.ta ? [s.k, s.m] : [s.m, s.k]);
    const b = randomData(r, s.tb ? [s.n, s.k] : [s.k, s.n]);
    const mm = (x: tf.Tensor, y: tf.Tensor) => tf.matMul(x, y, s.ta, s.tb);
    const { cpu, native } = await onBoth([a, b], (at, bt) => {
      const [ga, gb] = tf.grads((x: tf.Tensor, y: tf.Tensor) => mm(x, y).square().sum())([at!, bt!]);
      return [mm(at!, bt!), ga!, gb!];
    });
    for (let i = 0; i < 3; i++) expect(relErr(native[i]!, cpu[i]!), `output ${i}`).toBeLessThan(1e-5);
  });

  it('batched matMul with a broadcast side', async () => {
    const a = randomData(r, [3, 4, 5]);
    const b = randomData(r, [1, 5, 6]);
    const { cpu, native } = await onBoth([a, b], (at, bt) => tf.matMul(at!, bt!));
    expect(relErr(native[0]!, cpu[0]!)).toBeLessThan(1e-5);
  });

  it.each([
    ['relu', 'relu' as const],
    ['linear', 'linear' as const],
  ])('fused matMul + bias + %s, with gradients (as a Dense layer)', async (_l, activation) => {
    const a = randomData(r, [8, 33]);
    const b = randomData(r, [33, 7]);
    const bias = randomData(r, [7]);
    const f = (x: tf.Tensor, w: tf.Tensor, c: tf.Tensor) => tf.fused.matMul({ a: x as tf.Tensor2D, b: w as tf.Tensor2D, bias: c, activation });
    const { cpu, native } = await onBoth([a, b, bias], (at, bt, ct) => {
      const g = tf.grads((x: tf.Tensor, w: tf.Tensor, c: tf.Tensor) => f(x, w, c).square().sum())([at!, bt!, ct!]);
      return [f(at!, bt!, ct!), ...g];
    });
    for (let i = 0; i < 4; i++) expect(relErr(native[i]!, cpu[i]!), `output ${i}`).toBeLessThan(1e-5);
    expect(nativeKernelStats()._FusedMatMul?.native).toBeGreaterThan(0);
  });
});

describe.skipIf(skipReason !== null)('native max pooling vs tfjs cpu', () => {
  const r = prng(9);
  const cases = Array.from({ length: 8 }, (_, i) => ({
    n: i === 0 ? 1 : i === 1 ? 16 : int(r, 1, 16),
    h: int(r, 3, 12),
    w: int(r, 3, 12),
    c: int(r, 1, 20),
    k: int(r, 1, 3),
    stride: (i % 2 === 0 ? 2 : 1) as 1 | 2,
    pad: (Math.floor(i / 2) % 2 === 0 ? 'valid' : 'same') as 'valid' | 'same',
  }));

  it.each(cases.map((c) => [`x[${c.n},${c.h},${c.w},${c.c}] k${c.k} s${c.stride} ${c.pad}`, c] as const))(
    'maxPool and its gradient (with ties): %s',
    async (_l, c) => {
      // Quantized values make ties common (as after a relu): the gradient must go to the same cell as tfjs's.
      const x = randomData(r, [c.n, c.h, c.w, c.c], true);
      const pool = (t: tf.Tensor) => tf.maxPool(t as tf.Tensor4D, c.k, c.stride, c.pad);
      const { cpu, native } = await onBoth([x], (xt) => {
        const g = tf.grad((t: tf.Tensor) =>
          pool(t)
            .mul(tf.range(1, 1 + pool(t).size).reshape(pool(t).shape))
            .sum(),
        )(xt!);
        return [pool(xt!), g];
      });
      expect(relErr(native[0]!, cpu[0]!)).toBeLessThan(1e-6);
      expect(relErr(native[1]!, cpu[1]!)).toBeLessThan(1e-6);
    },
  );

  it('served pooling natively', () => {
    const s = nativeKernelStats();
    expect(s.MaxPool?.native).toBeGreaterThan(0);
    expect(s.MaxPoolGrad?.native).toBeGreaterThan(0);
    expect(s.MaxPool?.fallback).toBe(0);
    expect(s.MaxPoolGrad?.fallback).toBe(0);
  });
});
