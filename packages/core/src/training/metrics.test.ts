import { describe, expect, it } from 'vitest';
import { argmaxRows, computeMetrics } from './metrics.js';

describe('computeMetrics', () => {
  it('computes loss, accuracy, confusion matrix and per-class P/R/F1', () => {
    // 3 classes, 5 samples
    const probs = new Float32Array([
      0.7,
      0.2,
      0.1, // y0 -> 0
      0.1,
      0.8,
      0.1, // y1 -> 1
      0.6,
      0.3,
      0.1, // y1 -> 0 (wrong)
      0.2,
      0.2,
      0.6, // y2 -> 2
      0.5,
      0.1,
      0.4, // y2 -> 0 (wrong)
    ]);
    const labels = [0, 1, 1, 2, 2];
    const m = computeMetrics(probs, labels, ['a', 'b', 'c']);
    expect(m.count).toBe(5);
    expect(m.accuracy).toBeCloseTo(3 / 5);
    const expectedLoss = -(Math.log(0.7) + Math.log(0.8) + Math.log(0.3) + Math.log(0.6) + Math.log(0.4)) / 5;
    expect(m.loss).toBeCloseTo(expectedLoss, 6);
    expect(m.confusion).toEqual([
      [1, 0, 0],
      [1, 1, 0],
      [1, 0, 1],
    ]);
    const [a, b, c] = m.perClass;
    expect(a?.precision).toBeCloseTo(1 / 3);
    expect(a?.recall).toBe(1);
    expect(a?.f1).toBeCloseTo(0.5);
    expect(b?.precision).toBe(1);
    expect(b?.recall).toBe(0.5);
    expect(c?.support).toBe(2);
    expect(m.macro.recall).toBeCloseTo((1 + 0.5 + 0.5) / 3);
  });

  it('clips probabilities like Keras (no infinite loss) and gives 0 for classes never predicted', () => {
    const m = computeMetrics(new Float32Array([1, 0, 1, 0]), [1, 0], ['x', 'y']);
    expect(Number.isFinite(m.loss)).toBe(true);
    expect(m.loss).toBeCloseTo(-Math.log(1e-7) / 2, 3);
    expect(m.perClass[1]?.precision).toBe(0);
    expect(m.perClass[1]?.f1).toBe(0);
  });

  it('rejects shape mismatches and out-of-range labels', () => {
    expect(() => computeMetrics(new Float32Array(5), [0, 1], ['a', 'b'])).toThrow();
    expect(() => computeMetrics(new Float32Array(4), [0, 2], ['a', 'b'])).toThrow(/label 2/);
  });

  it('argmaxRows picks the first maximum of each row', () => {
    expect(argmaxRows(new Float32Array([0.1, 0.9, 0.5, 0.5, 0, 0]), 2)).toEqual([1, 0, 0]);
  });
});
