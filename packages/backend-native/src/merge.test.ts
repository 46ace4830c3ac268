import { describe, expect, it } from 'vitest';
import { loadAddon } from './addon.js';
import { bucketSumOfSquares, mergeTwoInto, rangeSumOfSquares, setVectorKernels } from '@dptrain/core';
import { nativeOrSkipReason, prng } from './native-backend.testutil.js';

const skipReason = await nativeOrSkipReason();

/** The JS merge of core's meanOfTwo: each product and the sum in double, then one rounding to float32. */
function jsMerge(a: Float32Array, b: Float32Array, wa: number, wb: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = wa * a[i]! + wb * b[i]!;
  return out;
}

/** The finiteness check as core's JS loop does it (vector-kernels.ts without a kernel). */
function firstNonFiniteJs(g: Float32Array): number {
  for (let i = 0; i < g.length; i++) if (!Number.isFinite(g[i]!)) return i;
  return -1;
}

function sameBits(x: Float32Array, y: Float32Array): boolean {
  return Buffer.compare(Buffer.from(x.buffer, x.byteOffset, x.byteLength), Buffer.from(y.buffer, y.byteOffset, y.byteLength)) === 0;
}

/**
 * Values of every magnitude, signs, zeros and subnormals: where a fused multiply-add or float arithmetic would differ;
 * with `nonFinite`, also NaN and ±Infinity (about one in 50).
 */
function awkward(n: number, seed: number, nonFinite = false): Float32Array {
  const r = prng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (nonFinite && r() < 0.02) {
      out[i] = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY][Math.floor(r() * 3)]!;
      continue;
    }
    const kind = Math.floor(r() * 6);
    const sign = r() < 0.5 ? -1 : 1;
    out[i] =
      kind === 0
        ? 0
        : kind === 1
          ? sign * r() * 1e-40
          : kind === 2
            ? sign * r() * 3e38
            : kind === 3
              ? sign * (1 + r() * 2 ** -20)
              : sign * r() * 10 ** (r() * 20 - 10);
  }
  return out;
}

describe.skipIf(skipReason !== null)('native mergeTwo and firstNonFinite (native/merge.cc)', () => {
  it('mergeTwo gives the JS merge bit for bit, with count weights, at odd lengths, in place', () => {
    const addon = loadAddon();
    for (const [n, wa] of [
      [1, 0.5],
      [15, 1 / 3],
      [17, 3 / 7],
      [100_003, 8 / 11],
      [1 << 20, 0.5],
    ] as const) {
      const a = awkward(n, n);
      const b = awkward(n, n + 1);
      const wb = 1 - wa;
      const want = jsMerge(a, b, wa, wb);
      const out = new Float32Array(n);
      const isa = addon.mergeTwo(out, a, b, wa, wb);
      expect(isa).toMatch(/^(avx512|scalar)$/);
      expect(sameBits(out, want), `n=${n} wa=${wa} (${isa})`).toBe(true);
      // into one of its operands, as the tree merge does
      const a2 = a.slice();
      addon.mergeTwo(a2, a2, b, wa, wb);
      expect(sameBits(a2, want)).toBe(true);
    }
  });

  it("mergeTwo gives the JS merge bit for bit on random inputs with NaN and ±Infinity, and so does core's mergeTwoInto through it", () => {
    const addon = loadAddon();
    for (const seed of [1, 2, 3]) {
      const n = 50_000 + seed * 7;
      const a = awkward(n, 10 * seed, true);
      const b = awkward(n, 10 * seed + 1, true);
      const wa = seed / 7;
      const want = jsMerge(a, b, wa, 1 - wa);
      const out = new Float32Array(n);
      addon.mergeTwo(out, a, b, wa, 1 - wa);
      let nonFinite = 0;
      for (let i = 0; i < n; i++) if (!Number.isFinite(want[i]!)) nonFinite++;
      expect(nonFinite).toBeGreaterThan(n / 50); // the inputs do reach the NaN and Infinity paths
      expect(sameBits(out, want), `seed ${seed}`).toBe(true);
      // core's merge (the coordinator's and the tree's), through the native kernel as useNativeOptimizer sets it
      setVectorKernels({ mergeTwo: addon.mergeTwo.bind(addon) });
      try {
        const viaCore = new Float32Array(n);
        mergeTwoInto(viaCore, a, b, wa, 1 - wa);
        expect(sameBits(viaCore, want)).toBe(true);
      } finally {
        setVectorKernels({});
      }
    }
  });

  it('bucketSumsOfSquares gives the JS per-bucket sums bit for bit (8 buckets side by side, a short last one, NaN and Infinity), and so does core through it', () => {
    const addon = loadAddon();
    for (const [n, b, nonFinite] of [
      [10_000, 4096, false],
      [100_003, 4096, false],
      [1 << 16, 1 << 12, true],
      [70_001, 997, true],
      [5, 8, false],
    ] as const) {
      const g = awkward(n, n + b, nonFinite);
      const buckets = Math.ceil(n / b);
      const want = Float64Array.from({ length: buckets }, (_, k) => rangeSumOfSquares(g, k * b, Math.min(n, (k + 1) * b)));
      const out = new Float64Array(buckets);
      addon.bucketSumsOfSquares(g, b, out);
      expect(Array.from(out), `n=${n} b=${b}`).toEqual(Array.from(want));
      // the sums differ from a one-pass sum in another order: the test can tell a reordered sum
      if (!nonFinite && buckets > 1) expect(out.reduce((a, x) => a + x, 0)).not.toBe(rangeSumOfSquares(g.slice().reverse()));
      setVectorKernels({ bucketSumsOfSquares: addon.bucketSumsOfSquares.bind(addon) });
      try {
        expect(Array.from(bucketSumOfSquares(g, b))).toEqual(Array.from(want));
      } finally {
        setVectorKernels({});
      }
    }
  });

  it('a merge in float32 arithmetic (other roundings) would differ on these inputs: the bit test can tell', () => {
    const a = awkward(1 << 16, 5);
    const b = awkward(1 << 16, 6);
    const wa = 3 / 7;
    const wb = 4 / 7;
    const out = new Float32Array(a.length);
    loadAddon().mergeTwo(out, a, b, wa, wb);
    let floatDiffers = 0;
    for (let i = 0; i < a.length; i++) {
      if (Math.fround(Math.fround(wa * a[i]!) + Math.fround(wb * b[i]!)) !== out[i]) floatDiffers++;
    }
    expect(floatDiffers).toBeGreaterThan(0);
  });

  it('firstNonFinite names the first NaN or Infinity of random gradients as the JS check does, or says -1', () => {
    const addon = loadAddon();
    const r = prng(77);
    for (let trial = 0; trial < 20; trial++) {
      const g = awkward(10_000 + trial * 997, 100 + trial).map((x) => (Number.isFinite(x) ? x : 0));
      const at = trial === 0 ? -1 : Math.floor(r() * g.length);
      if (at >= 0) g[at] = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY][trial % 3]!;
      if (at >= 0 && trial % 2 === 0) g[Math.min(g.length - 1, at + 1 + Math.floor(r() * 5000))] = Number.NaN; // a later one too
      expect(addon.firstNonFinite(g), `trial ${trial}`).toBe(at);
      expect(firstNonFiniteJs(g)).toBe(at);
    }
  });

  it('firstNonFinite finds the first NaN or Infinity, or says -1', () => {
    const addon = loadAddon();
    const g = awkward(50_000, 9).map((x) => (Number.isFinite(x) ? x : 0));
    expect(addon.firstNonFinite(g)).toBe(-1);
    g[40_001] = Infinity;
    g[45_000] = NaN;
    expect(addon.firstNonFinite(g)).toBe(40_001);
    g[3] = -Infinity;
    expect(addon.firstNonFinite(g)).toBe(3);
  });
});
