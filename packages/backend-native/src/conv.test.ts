import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadAddon } from './addon.js';
import { nativeKernelStats, resetNativeKernelStats } from './backend.js';
import { type ConvCase, int, nativeOrSkipReason, onBoth, prng, randomData, relErr } from './native-backend.testutil.js';

const skipReason = await nativeOrSkipReason();

interface Case extends ConvCase {
  dilation: 1 | 2;
}

/** Random small conv cases covering stride 1/2, same/valid, batch 1..16. */
function cases(seed: number, count: number, dilateLast: boolean): Case[] {
  const r = prng(seed);
  const out: Case[] = [];
  for (let i = 0; i < count; i++) {
    const k = int(r, 1, 3);
    out.push({
      n: i === 0 ? 1 : i === 1 ? 16 : int(r, 1, 16),
      h: int(r, 4, 11),
      w: int(r, 4, 11),
      c: int(r, 1, 9),
      o: int(r, 1, 9),
      k,
      stride: i % 2 === 0 || (dilateLast && i === count - 1) ? 1 : 2, // tfjs: dilation 2 needs stride 1
      pad: Math.floor(i / 2) % 2 === 0 ? 'same' : 'valid',
      dilation: dilateLast && i === count - 1 ? 2 : 1,
    });
  }
  return out;
}
const label = (c: Case) => `x[${c.n},${c.h},${c.w},${c.c}] k${c.k} o${c.o} s${c.stride} ${c.pad} d${c.dilation}`;

describe.skipIf(skipReason !== null)('native conv kernels vs tfjs cpu', () => {
  beforeAll(() => resetNativeKernelStats());

  it.each(
    cases(11, 8, false) /* tfjs has no conv gradient for dilation > 1 */
      .map((c) => [label(c), c] as const),
  )('Conv2D forward + both gradients: %s', async (_l, c) => {
    const r = prng(c.n * 1000 + c.h);
    const x = randomData(r, [c.n, c.h, c.w, c.c]);
    const f = randomData(r, [c.k, c.k, c.c, c.o]);
    const conv = (xt: tf.Tensor, ft: tf.Tensor) => tf.conv2d(xt as tf.Tensor4D, ft as tf.Tensor4D, c.stride, c.pad, 'NHWC', c.dilation);
    const { cpu, native } = await onBoth([x, f], (xt, ft) => {
      const y = conv(xt!, ft!);
      // A non-uniform upstream gradient: d(sum(y * y * 0.5)) = y.
      const [gx, gf] = tf.grads((a: tf.Tensor, b: tf.Tensor) => conv(a, b).square().mul(0.5).sum())([xt!, ft!]);
      return [y, gx!, gf!];
    });
    for (let i = 0; i < 3; i++) expect(relErr(native[i]!, cpu[i]!), `output ${i}`).toBeLessThan(1e-4);
  });

  it.each(cases(23, 6, true).map((c) => [label(c), c] as const))('FusedConv2D (bias + relu) forward: %s', async (_l, c) => {
    const r = prng(c.o * 77 + c.w);
    const x = randomData(r, [c.n, c.h, c.w, c.c]);
    const f = randomData(r, [c.k, c.k, c.c, c.o]);
    const b = randomData(r, [c.o]);
    const { cpu, native } = await onBoth([x, f, b], (xt, ft, bt) =>
      tf.fused.conv2d({
        x: xt as tf.Tensor4D,
        filter: ft as tf.Tensor4D,
        strides: c.stride,
        pad: c.pad,
        dilations: c.dilation,
        bias: bt,
        activation: 'relu',
      }),
    );
    expect(relErr(native[0]!, cpu[0]!)).toBeLessThan(1e-4);
    expect(native[0]!.some((v) => v === 0)).toBe(true); // relu applied
  });

  it("agrees with oneDNN's blocked activation layout too (setActivationLayout('any'))", async () => {
    const addon = loadAddon();
    addon.setActivationLayout('any');
    try {
      const r = prng(77);
      const x = randomData(r, [3, 7, 6, 16]);
      const f = randomData(r, [3, 3, 16, 32]);
      const conv = (xt: tf.Tensor, ft: tf.Tensor) => tf.conv2d(xt as tf.Tensor4D, ft as tf.Tensor4D, 2, 'same');
      const { cpu, native } = await onBoth([x, f], (xt, ft) => {
        const [gx, gf] = tf.grads((a: tf.Tensor, b: tf.Tensor) => conv(a, b).square().sum())([xt!, ft!]);
        return [conv(xt!, ft!), gx!, gf!];
      });
      for (let i = 0; i < 3; i++) expect(relErr(native[i]!, cpu[i]!), `output ${i}`).toBeLessThan(1e-4);
    } finally {
      addon.setActivationLayout('nhwc');
    }
  });

  // The channel counts above are too small for oneDNN's Winograd kernels; VGG16's 3x3 stride-1 layers (channels in
  // multiples of 16) run on them by default.
  it.each([
    ['x[2,9,9,32] o32 same (VGG16 block5 shape, scaled down)', [2, 9, 9, 32], 32, 'same'],
    ['x[3,14,11,16] o48 valid', [3, 14, 11, 16], 48, 'valid'],
    ['x[1,23,23,64] o16 same', [1, 23, 23, 64], 16, 'same'],
  ] as const)('Winograd 3x3 stride 1 (the default): forward, fused bias + relu and both gradients: %s', async (_l, xs, o, pad) => {
    const addon = loadAddon();
    const r = prng(xs[1] * 31 + o);
    const x = randomData(r, [...xs]);
    const f = randomData(r, [3, 3, xs[3], o]);
    const b = randomData(r, [o]);
    const conv = (xt: tf.Tensor, ft: tf.Tensor) => tf.conv2d(xt as tf.Tensor4D, ft as tf.Tensor4D, 1, pad);
    const run = (xt?: tf.Tensor, ft?: tf.Tensor, bt?: tf.Tensor) => {
      const [gx, gf] = tf.grads((a: tf.Tensor, c: tf.Tensor) => conv(a, c).square().mul(0.5).sum())([xt!, ft!]);
      const fused = tf.fused.conv2d({ x: xt as tf.Tensor4D, filter: ft as tf.Tensor4D, strides: 1, pad, bias: bt, activation: 'relu' });
      return [conv(xt!, ft!), fused, gx!, gf!];
    };
    expect(addon.setConvAlgorithm('winograd')).toBe('winograd');
    const { cpu, native } = await onBoth([x, f, b], run);
    const impl = addon.info().impl;
    for (const k of ['conv_fwd', 'conv_bwd_data', 'conv_bwd_weights']) expect(impl[k], k).toMatch(/wino/);
    for (let i = 0; i < 4; i++) expect(relErr(native[i]!, cpu[i]!), `output ${i}`).toBeLessThan(1e-4);
    // the direct algorithm on the same shape: also within tolerance, and really a different kernel
    addon.setConvAlgorithm('direct');
    try {
      const direct = (await onBoth([x, f, b], run)).native;
      expect(addon.info().impl.conv_bwd_weights).not.toMatch(/wino/);
      for (let i = 0; i < 4; i++) expect(relErr(direct[i]!, native[i]!), `output ${i}`).toBeLessThan(1e-4);
    } finally {
      addon.setConvAlgorithm('winograd');
    }
  });

  it('keeps the direct algorithm for fewer than 16 channels (VGG16 block1_conv1: 3 -> 64)', async () => {
    const addon = loadAddon();
    const r = prng(3);
    const x = randomData(r, [2, 12, 12, 3]);
    const f = randomData(r, [3, 3, 3, 16]);
    const { cpu, native } = await onBoth([x, f], (xt, ft) => tf.conv2d(xt as tf.Tensor4D, ft as tf.Tensor4D, 1, 'same'));
    expect(addon.info().impl.conv_fwd).not.toMatch(/wino/);
    expect(relErr(native[0]!, cpu[0]!)).toBeLessThan(1e-4);
  });

  it('rejects an unknown convolution algorithm by name', () => {
    expect(() => loadAddon().setConvAlgorithm('fft' as 'direct')).toThrow(/'fft' is not 'winograd' or 'direct'/);
  });

  it('runs the convolutions natively, without falling back', () => {
    const s = nativeKernelStats();
    expect(s.Conv2D?.native).toBeGreaterThan(0);
    expect(s.FusedConv2D?.native).toBeGreaterThan(0);
    expect(s.Conv2DBackpropInput?.native).toBeGreaterThan(0);
    expect(s.Conv2DBackpropFilter?.native).toBeGreaterThan(0);
    for (const k of ['Conv2D', 'FusedConv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter']) expect(s[k]?.fallback, k).toBe(0);
  });

  it('falls back to the cpu kernel for what it does not cover (elu activation)', async () => {
    await tf.setBackend('dptrain-native');
    const before = nativeKernelStats().FusedConv2D?.fallback ?? 0;
    const y = tf.tidy(() =>
      tf.fused.conv2d({ x: tf.ones([1, 4, 4, 2]) as tf.Tensor4D, filter: tf.ones([2, 2, 2, 3]) as tf.Tensor4D, strides: 1, pad: 'valid', activation: 'elu' }),
    );
    expect(Array.from(await y.data())[0]).toBeCloseTo(8, 5);
    y.dispose();
    expect(nativeKernelStats().FusedConv2D?.fallback).toBe(before + 1);
  });
});
