import { describe, expect, it } from 'vitest';
import { epochOrder, makeBatches, stratifiedSplit } from './stratified-split.js';
import type { Sample } from './types.js';

function samples(perClass: number[]): Sample[] {
  const out: Sample[] = [];
  // interleave classes so the file order is not grouped
  const max = Math.max(...perClass);
  for (let i = 0; i < max; i++) {
    perClass.forEach((n, label) => {
      if (i < n) out.push({ split: 'labelled', index: out.length, name: `${label}_${i}.jpg`, path: `/x/${label}_${i}.jpg`, label });
    });
  }
  return out;
}

describe('stratifiedSplit', () => {
  it('keeps class proportions (default 20%) and partitions the samples', () => {
    const all = samples([50, 30, 20, 10]);
    const { train, validation } = stratifiedSplit(all, { seed: 1 });
    expect(train.length + validation.length).toBe(all.length);
    const names = new Set([...train, ...validation].map((s) => s.name));
    expect(names.size).toBe(all.length);
    const count = (list: Sample[], l: number) => list.filter((s) => s.label === l).length;
    expect([0, 1, 2, 3].map((l) => count(validation, l))).toEqual([10, 6, 4, 2]);
    // data set order and indices are kept
    expect(train.map((s) => s.index)).toEqual([...train.map((s) => s.index)].sort((a, b) => a - b));
    expect(validation.every((s) => all[s.index] === s)).toBe(true);
  });

  it('is deterministic by seed and differs across seeds', () => {
    const all = samples([40, 40, 40]);
    const a = stratifiedSplit(all, { seed: 5, fraction: 0.25 }).validation.map((s) => s.name);
    const b = stratifiedSplit(all, { seed: 5, fraction: 0.25 }).validation.map((s) => s.name);
    const c = stratifiedSplit(all, { seed: 6, fraction: 0.25 }).validation.map((s) => s.name);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(a).toHaveLength(30);
  });

  it('small classes: at least one validation sample, never all; fraction 0 keeps everything in train', () => {
    const all = samples([2, 1, 3]);
    const { train, validation } = stratifiedSplit(all, { seed: 0, fraction: 0.1 });
    expect(validation.map((s) => s.label).sort()).toEqual([0, 2]);
    expect(train.filter((s) => s.label === 1)).toHaveLength(1);
    expect(stratifiedSplit(all, { fraction: 0 }).validation).toEqual([]);
    expect(() => stratifiedSplit(all, { fraction: 1 })).toThrow(RangeError);
  });
});

describe('makeBatches / epochOrder', () => {
  it('cuts into batches, shuffled per (seed, epoch), deterministic', () => {
    const items = Array.from({ length: 10 }, (_, i) => i);
    const b0 = makeBatches(items, 4, { seed: 1, epoch: 0 });
    expect(b0.map((b) => b.length)).toEqual([4, 4, 2]);
    expect(b0.flat().sort((x, y) => x - y)).toEqual(items);
    expect(makeBatches(items, 4, { seed: 1, epoch: 0 })).toEqual(b0);
    expect(makeBatches(items, 4, { seed: 1, epoch: 1 })).not.toEqual(b0);
    expect(makeBatches(items, 4, { shuffle: false, dropRemainder: true })).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
    ]);
    expect(epochOrder(items, 3, 2)).toEqual(epochOrder(items, 3, 2));
  });
});
