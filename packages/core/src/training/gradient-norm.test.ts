import { describe, expect, it } from 'vitest';
import { bucketRanges, bucketSumOfSquares, normFromBucketSums, rangeSumOfSquares } from './buckets.js';
import { GradientNormGuard, clipByGlobalNorm, clipScale, l2Norm, scaleRange } from './gradient-norm.js';

describe('l2Norm and clipByGlobalNorm', () => {
  it('computes the L2 norm and clips to the global norm, in place', () => {
    const g = new Float32Array([3, 4]);
    expect(l2Norm(g)).toBe(5);
    expect(clipByGlobalNorm(g, 10)).toBe(5);
    expect([...g]).toEqual([3, 4]); // under the limit: untouched
    expect(clipByGlobalNorm(g, 1)).toBe(5);
    expect(g[0]).toBeCloseTo(0.6, 6);
    expect(g[1]).toBeCloseTo(0.8, 6);
    expect(l2Norm(g)).toBeCloseTo(1, 6);
    const h = new Float32Array([30, 40]);
    clipByGlobalNorm(h, 0); // 0: off
    expect([...h]).toEqual([30, 40]);
  });
});

describe('GradientNormGuard', () => {
  it("refuses, on the first step, a part far above the median of the step's other parts", () => {
    const guard = new GradientNormGuard();
    expect(guard.refusal(1e25, [1, 1.2, 0.9])).toMatch(/times the median .* step's other gradients/);
    expect(guard.refusal(1.1, [1e25, 1.2, 0.9])).toBeUndefined();
    expect(guard.refusal(1e25, [])).toBeUndefined(); // a lone first gradient has nothing to compare with
  });

  it('judges later parts against the median of the last accepted norms, and the absolute bound always', () => {
    const guard = new GradientNormGuard({ maxRatio: 10, maxNorm: 50 });
    guard.accept([1, 2, 3]);
    expect(guard.reference()).toBe(2);
    expect(guard.refusal(19)).toBeUndefined();
    expect(guard.refusal(21)).toMatch(/10\.5 times the median 2\.000 of the last accepted gradients \(limit 10x/);
    expect(guard.refusal(60, [60, 60])).toMatch(/above the limit of 50 \(--max-grad-norm\)/);
    expect(guard.refusal(NaN)).toMatch(/norm is NaN/);
    // the window slides
    const g2 = new GradientNormGuard({ window: 2 });
    g2.accept([100, 1, 1]);
    expect(g2.reference()).toBe(1);
  });

  it('refuses bad options with E_CONFIG', () => {
    expect(() => new GradientNormGuard({ maxRatio: 1 })).toThrow(expect.objectContaining({ code: 'E_CONFIG' }));
    expect(() => new GradientNormGuard({ maxNorm: 0 })).toThrow(expect.objectContaining({ code: 'E_CONFIG' }));
  });
});

describe('bucketed norms', () => {
  const g = Float32Array.from({ length: 1001 }, (_, i) => Math.sin(i * 0.37) * (1 + (i % 7)));
  it('bucketRanges cuts fixed contiguous buckets, the last one shorter', () => {
    expect(bucketRanges(10, 4)).toEqual([
      { start: 0, end: 4 },
      { start: 4, end: 8 },
      { start: 8, end: 10 },
    ]);
    expect(bucketRanges(0, 4)).toEqual([]);
    expect(() => bucketRanges(10, 0)).toThrow(/bucketFloats/);
  });
  it('l2Norm is the square root of the per-bucket float64 sums taken in bucket order, whatever arrives first', () => {
    const sums = bucketSumOfSquares(g, 100);
    expect(sums.length).toBe(11);
    expect(l2Norm(g, 100)).toBe(normFromBucketSums(sums));
    // accumulated one bucket at a time (a pipelined or sharded coordinator): the same value
    const late = new Float64Array(11);
    for (const k of [10, 3, 0, 7, 1, 2, 4, 5, 6, 8, 9]) {
      const r = bucketRanges(g.length, 100)[k]!;
      late[k] = rangeSumOfSquares(g, r.start, r.end);
    }
    expect(normFromBucketSums(late)).toBe(l2Norm(g, 100));
  });
  it("clipping bucket by bucket with clipScale + scaleRange gives clipByGlobalNorm's bits", () => {
    const whole = g.slice();
    const norm = clipByGlobalNorm(whole, 3, 100);
    const ranged = g.slice();
    const scale = clipScale(normFromBucketSums(bucketSumOfSquares(ranged, 100)), 3);
    expect(scale).toBeLessThan(1);
    for (const r of bucketRanges(ranged.length, 100)) scaleRange(ranged, scale, r.start, r.end);
    expect(Array.from(ranged)).toEqual(Array.from(whole));
    expect(l2Norm(whole, 100)).toBeCloseTo(3, 5);
    expect(norm).toBeGreaterThan(3);
    expect(clipScale(2, 3)).toBe(1);
    expect(clipScale(5, 0)).toBe(1);
  });
});
