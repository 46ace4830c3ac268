import { describe, expect, it } from 'vitest';
import { epochBatches, epochPermutation, globalBatch, stepsPerEpoch } from './sharding.js';
import { sliceSizes, splitBatch } from './batch-slices.js';

describe('epoch sharding', () => {
  it('visits every sample exactly once per epoch, keeping the uneven last batch', () => {
    const n = 103;
    const batches = epochBatches(n, 10, 42, 0);
    expect(batches).toHaveLength(11);
    expect(batches.slice(0, 10).every((b) => b.length === 10)).toBe(true);
    expect(batches[10]).toHaveLength(3);
    const all = batches.flat().sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(stepsPerEpoch(n, 10)).toBe(11);
    expect(stepsPerEpoch(100, 10)).toBe(10);
  });

  it('is deterministic per (seed, epoch) and differs across epochs and seeds', () => {
    const a = Array.from(epochPermutation(50, 7, 3));
    expect(Array.from(epochPermutation(50, 7, 3))).toEqual(a);
    expect(Array.from(epochPermutation(50, 7, 4))).not.toEqual(a);
    expect(Array.from(epochPermutation(50, 8, 3))).not.toEqual(a);
    expect(globalBatch(50, 8, 7, 3, 2)).toEqual(a.slice(16, 24));
    expect(() => globalBatch(50, 8, 7, 3, 7)).toThrow(/outside/);
  });

  it('splits a global batch into contiguous near-equal slices', () => {
    const items = Array.from({ length: 10 }, (_, i) => i);
    const parts = splitBatch(items, 3);
    expect(parts.map((p) => p.length)).toEqual([4, 3, 3]);
    expect(parts.flat()).toEqual(items);
    expect(sliceSizes(2, 4)).toEqual([1, 1, 0, 0]);
    expect(sliceSizes(0, 2)).toEqual([0, 0]);
  });

  it('weights slices by capacity when given a list', () => {
    expect(sliceSizes(12, [1, 2, 3])).toEqual([2, 4, 6]);
    const s = sliceSizes(10, [1, 1, 2]);
    expect(s.reduce((a, b) => a + b, 0)).toBe(10);
    expect(s[2]).toBe(5);
    expect(() => sliceSizes(4, [])).toThrow();
    expect(() => sliceSizes(4, [1, 0])).toThrow(/positive/);
  });
});
