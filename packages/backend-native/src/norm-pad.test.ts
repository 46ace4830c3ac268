import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { nativeKernelStats, resetNativeKernelStats } from './backend.js';
import { nativeOrSkipReason, onBoth, prng, randomData, relErr } from './native-backend.testutil.js';

const skipReason = await nativeOrSkipReason();

describe.skipIf(skipReason !== null)('native pad / clip / batch norm vs tfjs cpu', () => {
  beforeAll(() => resetNativeKernelStats());

  it.each([
    [
      [1, 5, 6, 3],
      [
        [0, 0],
        [1, 1],
        [1, 1],
        [0, 0],
      ],
      0,
    ],
    [
      [3, 4, 7, 8],
      [
        [0, 0],
        [0, 1],
        [2, 0],
        [0, 0],
      ],
      0.5,
    ],
    [
      [2, 3],
      [
        [1, 2],
        [0, 3],
      ],
      -1,
    ],
    [[5], [[2, 0]], 7],
  ] as const)('PadV2 %j paddings %j value %d', async (shape, paddings, value) => {
    const x = randomData(prng(shape.length * 13), [...shape]);
    const { cpu, native } = await onBoth([x], (xt) =>
      tf.pad(
        xt!,
        paddings.map((p) => [p[0], p[1]] as [number, number]),
        value,
      ),
    );
    expect(native[0]!.length).toBe(cpu[0]!.length);
    expect(relErr(native[0]!, cpu[0]!)).toBe(0);
  });

  it.each([
    [
      [3, 6, 7, 4],
      [0, 1, 1, 0],
      [3, 4, 5, 4],
    ],
    [
      [2, 5, 6],
      [1, 0, 2],
      [1, -1, 3],
    ],
    [
      [4, 9],
      [0, 3],
      [4, 5],
    ],
  ] as const)('Slice (non-contiguous) of x%j at %j size %j, with its gradient', async (shape, begin, sz) => {
    const x = randomData(prng(shape[0] * 17), [...shape]);
    const { cpu, native } = await onBoth([x], (xt) => {
      const f = (t: tf.Tensor) => tf.slice(t, [...begin], [...sz]);
      return [f(xt!), tf.grad((t: tf.Tensor) => f(t).square().sum())(xt!)];
    });
    for (let i = 0; i < 2; i++) expect(relErr(native[i]!, cpu[i]!), `output ${i}`).toBe(0);
  });

  it.each([
    [
      [1, 1, 1, 5],
      [3, 4, 2, 1],
    ],
    [
      [2, 3],
      [2, 3],
    ],
    [[4], [3]],
    [
      [2, 1, 3],
      [1, 4, 1],
    ],
  ] as const)('Tile x%j by %j', async (shape, reps) => {
    const x = randomData(prng(shape.length * 3), [...shape]);
    const { cpu, native } = await onBoth([x], (xt) => tf.tile(xt!, [...reps]));
    expect(native[0]!.length).toBe(cpu[0]!.length);
    expect(relErr(native[0]!, cpu[0]!)).toBe(0);
  });

  it('ClipByValue / Relu6 gradients (GreaterEqual, LessEqual, LogicalAnd, Select) match', async () => {
    const x = randomData(prng(8), [2, 5, 6, 3]);
    for (let i = 0; i < x.data.length; i++) x.data[i]! *= 10;
    const y = randomData(prng(9), [2, 5, 6, 3]);
    const { cpu, native } = await onBoth([x, y], (xt, yt) => [
      tf.grad((t: tf.Tensor) => tf.clipByValue(t, -2, 6).mul(yt!).sum())(xt!),
      tf.grad((t: tf.Tensor) => tf.relu6(t).mul(yt!).sum())(xt!),
      tf.where(tf.logicalAnd(tf.greaterEqual(xt!, yt!), tf.lessEqual(xt!, 3)), xt!, yt!),
    ]);
    for (let i = 0; i < 3; i++) expect(relErr(native[i]!, cpu[i]!), `output ${i}`).toBe(0);
    expect(native[0]!.some((v) => v === 0)).toBe(true);
  });

  it('ClipByValue and Relu6 match the cpu kernels (NaN stays NaN)', async () => {
    const x = randomData(prng(3), [3, 5, 4, 7]);
    for (let i = 0; i < x.data.length; i++) x.data[i]! *= 10;
    x.data[4] = Number.NaN;
    const { cpu, native } = await onBoth([x], (xt) => [tf.clipByValue(xt!, -2, 6), tf.relu6(xt!)]);
    for (let i = 0; i < 2; i++) {
      expect(Number.isNaN(native[i]![4]!)).toBe(true);
      native[i]![4] = cpu[i]![4] = 0;
      expect(relErr(native[i]!, cpu[i]!), `output ${i}`).toBe(0);
      expect(native[i]!.some((v) => v === 6)).toBe(true);
    }
  });

  it.each([
    ['per-channel params', [3, 4, 5, 6], true],
    ['scalar offset / no scale', [1, 3, 3, 8], false],
  ] as const)('FusedBatchNorm with %s', async (_l, shape, full) => {
    const r = prng(shape[3]);
    const c = shape[3];
    const x = randomData(r, [...shape]);
    const mean = randomData(r, [c]);
    const variance = randomData(r, [c]);
    for (let i = 0; i < c; i++) variance.data[i] = Math.abs(variance.data[i]!) + 0.1;
    const offset = randomData(r, full ? [c] : [1]);
    const scale = randomData(r, [c]);
    const { cpu, native } = await onBoth([x, mean, variance, offset, scale], (xt, m, v, o, s) => tf.batchNorm(xt!, m!, v!, o!, full ? s : undefined, 1e-3));
    expect(relErr(native[0]!, cpu[0]!)).toBeLessThan(1e-5);
  });

  it('runs them natively, without falling back', () => {
    const s = nativeKernelStats();
    for (const k of ['PadV2', 'Slice', 'Tile', 'GreaterEqual', 'LessEqual', 'LogicalAnd', 'Select', 'ClipByValue', 'Relu6', 'FusedBatchNorm']) {
      expect(s[k]?.native, k).toBeGreaterThan(0);
      expect(s[k]?.fallback, k).toBe(0);
    }
  });
});
