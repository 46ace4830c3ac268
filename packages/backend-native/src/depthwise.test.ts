import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { nativeKernelStats, resetNativeKernelStats } from './backend.js';
import { int, nativeOrSkipReason, onBoth, prng, randomData, relErr } from './native-backend.testutil.js';

const skipReason = await nativeOrSkipReason();

interface Case {
  n: number;
  h: number;
  w: number;
  c: number;
  /** Channel multiplier. */
  m: number;
  k: number;
  stride: 1 | 2;
  pad: 'same' | 'valid';
}

/** Random small depthwise cases: stride 1/2 x same/valid, batch 1 and 3, channels 1..8, multiplier 1 (2 for some). */
function cases(seed: number, count: number): Case[] {
  const r = prng(seed);
  const out: Case[] = [];
  for (let i = 0; i < count; i++) {
    out.push({
      n: i % 3 === 0 ? 1 : 3,
      h: int(r, 4, 10),
      w: int(r, 4, 10),
      c: i === 0 ? 1 : int(r, 1, 8),
      m: i >= count - 2 ? 2 : 1,
      k: int(r, 1, 3) === 2 ? 2 : 3,
      stride: i % 2 === 0 ? 1 : 2,
      pad: Math.floor(i / 2) % 2 === 0 ? 'same' : 'valid',
    });
  }
  return out;
}
const label = (c: Case) => `x[${c.n},${c.h},${c.w},${c.c}] k${c.k} m${c.m} s${c.stride} ${c.pad}`;

describe.skipIf(skipReason !== null)('native depthwise conv kernels vs tfjs cpu', () => {
  beforeAll(() => resetNativeKernelStats());

  it.each(cases(5, 8).map((c) => [label(c), c] as const))('DepthwiseConv2dNative forward + both gradients: %s', async (_l, c) => {
    const r = prng(c.n * 100 + c.h * 7 + c.c);
    const x = randomData(r, [c.n, c.h, c.w, c.c]);
    const f = randomData(r, [c.k, c.k, c.c, c.m]);
    const conv = (xt: tf.Tensor, ft: tf.Tensor) => tf.depthwiseConv2d(xt as tf.Tensor4D, ft as tf.Tensor4D, c.stride, c.pad);
    const { cpu, native } = await onBoth([x, f], (xt, ft) => {
      const [gx, gf] = tf.grads((a: tf.Tensor, b: tf.Tensor) => conv(a, b).square().mul(0.5).sum())([xt!, ft!]);
      return [conv(xt!, ft!), gx!, gf!];
    });
    for (let i = 0; i < 3; i++) expect(relErr(native[i]!, cpu[i]!), `output ${i}`).toBeLessThan(1e-4);
  });

  it.each(
    cases(9, 4).flatMap((c, i) =>
      (['relu', 'relu6', 'linear'] as const).filter((_a, j) => j === i % 3 || i === 0).map((a) => [`${label(c)} ${a}`, c, a] as const),
    ),
  )('FusedDepthwiseConv2D (bias + activation) forward: %s', async (_l, c, activation) => {
    const r = prng(c.c * 31 + c.w);
    // Scaled inputs so relu6 clips some outputs at 6.
    const x = randomData(r, [c.n, c.h, c.w, c.c]);
    for (let i = 0; i < x.data.length; i++) x.data[i]! *= 6;
    const f = randomData(r, [c.k, c.k, c.c, c.m]);
    const b = randomData(r, [c.c * c.m]);
    const { cpu, native } = await onBoth([x, f, b], (xt, ft, bt) =>
      tf.fused.depthwiseConv2d({ x: xt as tf.Tensor4D, filter: ft as tf.Tensor4D, strides: c.stride, pad: c.pad, bias: bt, activation }),
    );
    expect(relErr(native[0]!, cpu[0]!)).toBeLessThan(1e-4);
    if (activation !== 'linear') expect(native[0]!.some((v) => v === 0)).toBe(true);
    if (activation === 'relu6') expect(native[0]!.every((v) => v <= 6)).toBe(true);
  });

  it.each([
    [[1, 9, 8, 3], 1, 'same'],
    [[3, 10, 7, 5], 2, 'valid'],
  ] as const)('DepthwiseConv2dNative with dilation 2 (forward): x%j m%d %s', async (shape, m, pad) => {
    const r = prng(shape[3] * 5);
    const x = randomData(r, [...shape]);
    const f = randomData(r, [3, 3, shape[3], m]);
    const { cpu, native } = await onBoth([x, f], (xt, ft) => tf.depthwiseConv2d(xt as tf.Tensor4D, ft as tf.Tensor4D, 1, pad, 'NHWC', 2));
    expect(relErr(native[0]!, cpu[0]!)).toBeLessThan(1e-4);
  });

  it('runs the depthwise convolutions natively, without falling back', () => {
    const s = nativeKernelStats();
    for (const k of ['DepthwiseConv2dNative', 'FusedDepthwiseConv2D', 'DepthwiseConv2dNativeBackpropInput', 'DepthwiseConv2dNativeBackpropFilter']) {
      expect(s[k]?.native, k).toBeGreaterThan(0);
      expect(s[k]?.fallback, k).toBe(0);
    }
  });

  it('falls back to the cpu kernel for what it does not cover (elu activation)', async () => {
    await tf.setBackend('dptrain-native');
    const before = nativeKernelStats().FusedDepthwiseConv2D?.fallback ?? 0;
    const y = tf.tidy(() =>
      tf.fused.depthwiseConv2d({
        x: tf.ones([1, 4, 4, 2]) as tf.Tensor4D,
        filter: tf.ones([2, 2, 2, 1]) as tf.Tensor4D,
        strides: 1,
        pad: 'valid',
        activation: 'elu',
      }),
    );
    expect(Array.from(await y.data())[0]).toBeCloseTo(4, 5);
    y.dispose();
    expect(nativeKernelStats().FusedDepthwiseConv2D?.fallback).toBe(before + 1);
  });
});
