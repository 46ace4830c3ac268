import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAddon } from './addon.js';
import { nativeKernelStats, resetNativeKernelStats } from './backend.js';
import { setNativePrecision } from './index.js';
import { type ConvCase, int, nativeOrSkipReason, onBoth, prng, randomData, relErr } from './native-backend.testutil.js';

/**
 * Every kernel the native backend runs in bf16 (convolution forward and both gradients, depthwise too, matmul and its
 * gradients, fused bias + activation) against tfjs's fp32 cpu kernels, on random shapes: stride 1 and 2, 'same' and
 * 'valid', batch 1 to 16. bf16 keeps 8 bits of mantissa (relative rounding error <= 2^-9 per operand) and the
 * products are accumulated in fp32, so the tolerance is BF16_TOL of the output's scale; each result must also differ
 * from the fp32 one (bf16 really ran) and the oneDNN kernel that ran must be a bf16 one.
 */
const BF16_TOL = 2e-2;
/** Below this the result is indistinguishable from fp32: bf16 did not run. */
const FP32_TOL = 1e-5;

const skipReason = await nativeOrSkipReason();
const bf16Isa = skipReason === null ? loadAddon().info().bf16Isa : '';
const skip = skipReason !== null || bf16Isa === '';
if (skipReason === null && bf16Isa === '') console.warn('[backend-native] skipping bf16 kernel tests: this CPU has neither AVX512-BF16 nor AMX');

/** Random conv cases: stride 1/2 x same/valid in turn, batch 1, 16, then 1..16; channels up to 40. */
function convCases(seed: number, count: number, depthwise: boolean): ConvCase[] {
  const r = prng(seed);
  return Array.from({ length: count }, (_, i) => {
    const c = int(r, 4, 40);
    return {
      n: i === 0 ? 1 : i === 1 ? 16 : int(r, 1, 16),
      h: int(r, 5, 12),
      w: int(r, 5, 12),
      c,
      o: depthwise ? c : int(r, 4, 40),
      k: int(r, 1, 3) === 1 ? 1 : 3,
      stride: i % 2 === 0 ? 1 : 2,
      pad: Math.floor(i / 2) % 2 === 0 ? 'same' : 'valid',
    };
  });
}
const label = (c: ConvCase) => `x[${c.n},${c.h},${c.w},${c.c}] k${c.k} o${c.o} s${c.stride} ${c.pad}`;

/** Native bf16 vs cpu fp32, and vs native fp32 (they must differ: bf16 rounding). */
async function compare(inputs: { shape: number[]; data: Float32Array }[], fn: (...xs: tf.Tensor[]) => tf.Tensor[]) {
  setNativePrecision('fp32');
  const fp32 = (await onBoth(inputs, fn)).native;
  setNativePrecision('bf16');
  const { cpu, native } = await onBoth(inputs, fn);
  return { cpu, bf16: native, fp32 };
}

function expectBf16(out: { cpu: Float32Array[]; bf16: Float32Array[]; fp32: Float32Array[] }): void {
  out.cpu.forEach((ref, i) => {
    expect(out.fp32[i]!.length, `output ${i}`).toBe(ref.length);
    expect(relErr(out.fp32[i]!, ref), `output ${i} fp32`).toBeLessThan(1e-4);
    expect(relErr(out.bf16[i]!, ref), `output ${i} bf16 vs fp32 reference`).toBeLessThan(BF16_TOL);
    expect(relErr(out.bf16[i]!, out.fp32[i]!), `output ${i}: bf16 must round`).toBeGreaterThan(FP32_TOL);
  });
}

/** The addon's default bf16 policy (which convolutions stay fp32 in bf16 mode: depthwise, intensity below 24). */
const DEFAULT_POLICY = { depthwise: false, minIntensity: 24 } as const;

describe.skipIf(skip)('native bf16 kernels vs the fp32 reference', () => {
  // every convolution in bf16 (no policy): these tests check the bf16 kernels themselves, on small shapes
  beforeAll(() => {
    resetNativeKernelStats();
    loadAddon().setBf16Policy(true, 0);
  });
  afterAll(() => {
    setNativePrecision('fp32');
    loadAddon().setBf16Policy(DEFAULT_POLICY.depthwise, DEFAULT_POLICY.minIntensity);
    loadAddon().clearCache();
  });

  it.each(convCases(101, 8, false).map((c) => [label(c), c] as const))('Conv2D forward + both gradients: %s', async (_l, c) => {
    const r = prng(c.n * 1000 + c.h * 10 + c.c);
    const x = randomData(r, [c.n, c.h, c.w, c.c]);
    const f = randomData(r, [c.k, c.k, c.c, c.o]);
    const conv = (xt: tf.Tensor, ft: tf.Tensor) => tf.conv2d(xt as tf.Tensor4D, ft as tf.Tensor4D, c.stride, c.pad);
    const out = await compare([x, f], (xt, ft) => {
      const [gx, gf] = tf.grads((a: tf.Tensor, b: tf.Tensor) => conv(a, b).square().mul(0.5).sum())([xt!, ft!]);
      return [conv(xt!, ft!), gx!, gf!];
    });
    expectBf16(out);
    const impl = loadAddon().info().impl;
    for (const k of ['conv_fwd', 'conv_bwd_data', 'conv_bwd_weights']) expect(impl[k], k).toMatch(/bf16/);
  });

  it.each(convCases(202, 4, false).map((c) => [label(c), c] as const))('FusedConv2D (bias + relu) forward: %s', async (_l, c) => {
    const r = prng(c.o * 77 + c.w);
    const x = randomData(r, [c.n, c.h, c.w, c.c]);
    const f = randomData(r, [c.k, c.k, c.c, c.o]);
    const b = randomData(r, [c.o]);
    const out = await compare([x, f, b], (xt, ft, bt) => [
      tf.fused.conv2d({ x: xt as tf.Tensor4D, filter: ft as tf.Tensor4D, strides: c.stride, pad: c.pad, bias: bt, activation: 'relu' }),
    ]);
    expectBf16(out);
    expect(out.bf16[0]!.some((v) => v === 0)).toBe(true); // relu applied
  });

  it.each(convCases(303, 6, true).map((c) => [label(c), c] as const))('DepthwiseConv2dNative forward + both gradients: %s', async (_l, c) => {
    const r = prng(c.n * 100 + c.h * 7 + c.c);
    const x = randomData(r, [c.n, c.h, c.w, c.c]);
    const f = randomData(r, [c.k, c.k, c.c, 1]);
    const conv = (xt: tf.Tensor, ft: tf.Tensor) => tf.depthwiseConv2d(xt as tf.Tensor4D, ft as tf.Tensor4D, c.stride, c.pad);
    const out = await compare([x, f], (xt, ft) => {
      const [gx, gf] = tf.grads((a: tf.Tensor, b: tf.Tensor) => conv(a, b).square().mul(0.5).sum())([xt!, ft!]);
      return [conv(xt!, ft!), gx!, gf!];
    });
    expectBf16(out);
    const impl = loadAddon().info().impl;
    for (const k of ['dw_fwd', 'dw_bwd_data', 'dw_bwd_weights']) expect(impl[k], k).toMatch(/bf16/);
  });

  const r = prng(404);
  const mm = Array.from({ length: 6 }, (_, i) => ({ m: i === 0 ? 1 : int(r, 2, 16), k: int(r, 8, 300), n: int(r, 2, 64), ta: i % 2 === 1, tb: i % 3 === 1 }));
  it.each(mm.map((s) => [`${s.m}x${s.k}x${s.n} ta=${s.ta} tb=${s.tb}`, s] as const))('matMul and its gradients: %s', async (_l, s) => {
    const a = randomData(r, s.ta ? [s.k, s.m] : [s.m, s.k]);
    const b = randomData(r, s.tb ? [s.n, s.k] : [s.k, s.n]);
    const f = (x: tf.Tensor, y: tf.Tensor) => tf.matMul(x, y, s.ta, s.tb);
    const out = await compare([a, b], (at, bt) => {
      const [ga, gb] = tf.grads((x: tf.Tensor, y: tf.Tensor) => f(x, y).square().sum())([at!, bt!]);
      return [f(at!, bt!), ga!, gb!];
    });
    expectBf16(out);
    expect(loadAddon().info().impl.matmul).toMatch(/bf16/);
  });

  it('fused matMul + bias + relu, with gradients (a Dense layer)', async () => {
    const a = randomData(r, [16, 96]);
    const b = randomData(r, [96, 24]);
    const bias = randomData(r, [24]);
    const f = (x: tf.Tensor, w: tf.Tensor, c: tf.Tensor) => tf.fused.matMul({ a: x as tf.Tensor2D, b: w as tf.Tensor2D, bias: c, activation: 'relu' });
    const out = await compare([a, b, bias], (at, bt, ct) => {
      const [ga, gb] = tf.grads((x: tf.Tensor, w: tf.Tensor) => f(x, w, ct!).square().sum())([at!, bt!]);
      return [f(at!, bt!, ct!), ga!, gb!];
    });
    expectBf16(out);
  });

  it('runs every covered kernel natively in bf16, with no per-kernel fp32 fallback on this CPU', () => {
    const s = nativeKernelStats();
    for (const k of ['Conv2D', 'FusedConv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter', 'DepthwiseConv2dNative', 'BatchMatMul', '_FusedMatMul']) {
      expect(s[k]?.native, k).toBeGreaterThan(0);
      expect(s[k]?.fallback, k).toBe(0);
    }
    setNativePrecision('bf16');
    expect(loadAddon().info().bf16Fallbacks).toEqual([]);
  });

  it('keeps Winograd for fp32 only: a VGG16-style 3x3 stride-1 layer runs bf16 direct', async () => {
    const addon = loadAddon();
    const x = randomData(prng(9), [2, 9, 9, 32]);
    const f = randomData(prng(10), [3, 3, 32, 32]);
    const run = (xt?: tf.Tensor, ft?: tf.Tensor) => [tf.conv2d(xt as tf.Tensor4D, ft as tf.Tensor4D, 1, 'same')];
    setNativePrecision('fp32');
    await onBoth([x, f], run);
    expect(addon.info().impl.conv_fwd).toMatch(/wino/);
    setNativePrecision('bf16');
    await onBoth([x, f], run);
    expect(addon.info().impl.conv_fwd).not.toMatch(/wino/);
    expect(addon.info().impl.conv_fwd).toMatch(/bf16/);
  });

  it('keeps fp32 Winograd for a large 3x3 stride-1 filter gradient, where it is faster than bf16 (forward and input gradient bf16)', async () => {
    const addon = loadAddon();
    const x = randomData(prng(12), [2, 26, 26, 16]);
    const f = randomData(prng(13), [3, 3, 16, 16]);
    const conv = (xt: tf.Tensor, ft: tf.Tensor) => tf.conv2d(xt as tf.Tensor4D, ft as tf.Tensor4D, 1, 'same');
    setNativePrecision('bf16');
    const { cpu, native } = await onBoth([x, f], (xt, ft) => {
      const [gx, gf] = tf.grads((a: tf.Tensor, b: tf.Tensor) => conv(a, b).square().mul(0.5).sum())([xt!, ft!]);
      return [conv(xt!, ft!), gx!, gf!];
    });
    const impl = addon.info().impl;
    expect(impl.conv_fwd).toMatch(/bf16/);
    expect(impl.conv_bwd_data).toMatch(/bf16/);
    expect(impl.conv_bwd_weights).toMatch(/wino/);
    expect(addon.info().bf16Fallbacks).toEqual([]); // a choice, not a missing kernel
    // the filter gradient multiplies bf16-rounded forward values only through dy: within bf16 tolerance
    for (let i = 0; i < 3; i++) expect(relErr(native[i]!, cpu[i]!), `output ${i}`).toBeLessThan(BF16_TOL);
  });

  it('rejects an unknown precision by name', () => {
    expect(() => loadAddon().setBf16Policy(false, -1)).toThrow(/minIntensity must be a number >= 0/);
    expect(() => setNativePrecision('fp8' as 'bf16')).toThrow(/'fp8' is not 'fp32' or 'bf16'/);
  });
});

describe.skipIf(skip)('native bf16 policy: convolutions that stay fp32 in bf16 mode, where fp32 measured faster', () => {
  afterAll(() => {
    setNativePrecision('fp32');
    loadAddon().clearCache();
  });

  /** A conv's forward + both gradients in bf16 mode and in fp32 mode (native), and what the addon reports. */
  async function bf16VsFp32(x: { shape: number[]; data: Float32Array }, f: { shape: number[]; data: Float32Array }, depthwise: boolean) {
    const conv = (xt: tf.Tensor, ft: tf.Tensor) =>
      depthwise ? tf.depthwiseConv2d(xt as tf.Tensor4D, ft as tf.Tensor4D, 1, 'same') : tf.conv2d(xt as tf.Tensor4D, ft as tf.Tensor4D, 1, 'same');
    const fn = (xt?: tf.Tensor, ft?: tf.Tensor) => {
      const [gx, gf] = tf.grads((a: tf.Tensor, b: tf.Tensor) => conv(a, b).square().mul(0.5).sum())([xt!, ft!]);
      return [conv(xt!, ft!), gx!, gf!];
    };
    const out = await compare([x, f], fn);
    return { ...out, info: loadAddon().info() };
  }
  const same = (a: Float32Array[], b: Float32Array[]) => a.every((v, i) => Buffer.compare(Buffer.from(v.buffer), Buffer.from(b[i]!.buffer)) === 0);

  it('is on by default: depthwise convolutions and a 1x1 conv of 32 -> 16 channels (intensity 21) run fp32, bit for bit, and are listed', async () => {
    expect(loadAddon().setBf16Policy(DEFAULT_POLICY.depthwise, DEFAULT_POLICY.minIntensity)).toEqual(DEFAULT_POLICY);
    const dw = await bf16VsFp32(randomData(prng(21), [2, 7, 7, 24]), randomData(prng(22), [3, 3, 24, 1]), true);
    expect(same(dw.bf16, dw.fp32)).toBe(true);
    expect(dw.info.bf16Fp32).toEqual(['dw_bwd_data: depthwise', 'dw_bwd_weights: depthwise', 'dw_fwd: depthwise']);
    const pw = await bf16VsFp32(randomData(prng(23), [2, 8, 8, 32]), randomData(prng(24), [1, 1, 32, 16]), false);
    expect(same(pw.bf16, pw.fp32)).toBe(true);
    expect(pw.info.bf16Fp32).toEqual(['conv_bwd_data: intensity < 24', 'conv_bwd_weights: intensity < 24', 'conv_fwd: intensity < 24']);
    expect(pw.info.bf16Fallbacks).toEqual([]); // a choice, not a missing kernel
  });

  it('runs a 1x1 conv of 32 -> 64 channels (intensity 43) in bf16 under the default policy', async () => {
    loadAddon().setBf16Policy(DEFAULT_POLICY.depthwise, DEFAULT_POLICY.minIntensity);
    const out = await bf16VsFp32(randomData(prng(25), [2, 8, 8, 32]), randomData(prng(26), [1, 1, 32, 64]), false);
    expectBf16(out);
    for (const k of ['conv_fwd', 'conv_bwd_data', 'conv_bwd_weights']) expect(out.info.impl[k], k).toMatch(/bf16/);
    expect(out.info.bf16Fp32).toEqual([]);
  });

  it('runs depthwise in bf16 when the policy says so', async () => {
    try {
      expect(loadAddon().setBf16Policy(true, DEFAULT_POLICY.minIntensity)).toEqual({ ...DEFAULT_POLICY, depthwise: true });
      const dw = await bf16VsFp32(randomData(prng(27), [2, 7, 7, 24]), randomData(prng(28), [3, 3, 24, 1]), true);
      expectBf16(dw);
      for (const k of ['dw_fwd', 'dw_bwd_data', 'dw_bwd_weights']) expect(dw.info.impl[k], k).toMatch(/bf16/);
    } finally {
      loadAddon().setBf16Policy(DEFAULT_POLICY.depthwise, DEFAULT_POLICY.minIntensity);
    }
  });
});
