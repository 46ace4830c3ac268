import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import type { Sample } from '../data/types.js';
import { computeTreeGradients, meanOfTwo, mergeGradientTree, type RangedGradient } from './gradient-tree.js';
import { microBatchSlices, treeNodeSlices } from './batch-slices.js';
import { mulberry32 } from '../util/rng.js';
import { LinearReplica } from './linear-replica.testutil.js';
import type { GradientResult } from './types.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const samples = (n: number): Sample[] =>
  Array.from({ length: n }, (_, i) => ({ split: 'labelled', index: i, name: `${i}.jpg`, path: `/x/${i}.jpg`, label: i % 3 }));
const ctx = { phase: 'fine_tune' as const, epoch: 0, step: 0 };

async function replica(): Promise<LinearReplica> {
  const r = new LinearReplica();
  await r.setPhase('fine_tune');
  return r;
}

/** What a cluster computes: each slice's mean by its worker (the same tree), then the coordinator's merge. */
async function asWorkers(all: Sample[], micro: number, workers: number): Promise<GradientResult> {
  const r = await replica();
  const parts: RangedGradient[] = [];
  for (const { start, end } of microBatchSlices(all.length, micro, workers)) {
    const g = await computeTreeGradients(r, all.slice(start, end), ctx, micro);
    parts.push({ ...g, gradients: g.gradients.slice(), start, end });
  }
  return mergeGradientTree(parts, all.length, micro);
}

describe('gradient tree', () => {
  it('meanOfTwo weights by sample count, rounds once to float32, and can write into its first operand', () => {
    const a = { gradients: new Float32Array([1, 1, 0.1]), loss: 1, count: 1, correct: 1 };
    const b = { gradients: new Float32Array([4, 0, 0.2]), loss: 4, count: 3, correct: 0 };
    const r = meanOfTwo(a, b);
    expect(Array.from(r.gradients)).toEqual([3.25, 0.25, Math.fround(0.25 * Math.fround(0.1) + 0.75 * Math.fround(0.2))]);
    expect(r.loss).toBeCloseTo(3.25);
    expect([r.count, r.correct]).toEqual([4, 1]);
    const inPlace = meanOfTwo(a, b, a.gradients);
    expect(inPlace.gradients).toBe(a.gradients);
    expect(Array.from(inPlace.gradients)).toEqual(Array.from(r.gradients));
  });

  it('microBatchSlices cuts whole micro-batches (at most one slice per micro-batch); micro-batch 0: near-equal slices', () => {
    expect(microBatchSlices(32, 8, 1)).toEqual([{ start: 0, end: 32 }]);
    expect(microBatchSlices(32, 8, 2)).toEqual([
      { start: 0, end: 16 },
      { start: 16, end: 32 },
    ]);
    expect(microBatchSlices(32, 8, 4).map((s) => s.end - s.start)).toEqual([8, 8, 8, 8]);
    expect(microBatchSlices(32, 8, 8).map((s) => s.end - s.start)).toEqual([8, 8, 8, 8]);
    expect(microBatchSlices(32, 4, 8).map((s) => s.end - s.start)).toEqual([4, 4, 4, 4, 4, 4, 4, 4]);
    expect(microBatchSlices(20, 8, 2)).toEqual([
      { start: 0, end: 16 },
      { start: 16, end: 20 },
    ]);
    expect(microBatchSlices(40, 8, 3).map((s) => s.end - s.start)).toEqual([16, 16, 8]);
    expect(microBatchSlices(5, 0, 2)).toEqual([
      { start: 0, end: 3 },
      { start: 3, end: 5 },
    ]);
    expect(microBatchSlices(2, 8, 4)).toEqual([{ start: 0, end: 2 }]);
    expect(microBatchSlices(2, 0, 4)).toEqual([
      { start: 0, end: 1 },
      { start: 1, end: 2 },
    ]);
  });

  it.each([
    [32, 8, [1, 2, 3, 4, 8]],
    [27, 8, [1, 2, 3, 4]],
    [45, 4, [1, 2, 4, 8]],
  ])('batch %d, micro-batch %d: %j workers give the bits of one process', async (n, micro, counts) => {
    const all = samples(n);
    const one = await computeTreeGradients(await replica(), all, ctx, micro);
    for (const workers of counts) {
      const c = await asWorkers(all, micro, workers);
      expect(Array.from(c.gradients)).toEqual(Array.from(one.gradients));
      expect([c.count, c.correct]).toEqual([one.count, one.correct]);
      expect(c.loss).toBeCloseTo(one.loss, 6);
    }
    // and the tree is a mean: close to the whole batch in one call
    const whole = await (await replica()).computeGradients(all, ctx);
    for (let i = 0; i < whole.gradients.length; i++) expect(one.gradients[i]).toBeCloseTo(whole.gradients[i]!, 5);
    expect(one.loss).toBeCloseTo(whole.loss, 5);
  });

  it("parts that are not tree nodes (3 workers, a lost worker's share split) still count each sample once", async () => {
    const all = samples(32);
    const r = await replica();
    const whole = await r.computeGradients(all, ctx);
    const cuts = [0, 5, 11, 12, 30, 32];
    const parts: RangedGradient[] = [];
    for (let i = 0; i + 1 < cuts.length; i++) {
      const g = await r.computeGradients(all.slice(cuts[i]!, cuts[i + 1]!), ctx);
      parts.push({ ...g, gradients: g.gradients.slice(), start: cuts[i]!, end: cuts[i + 1]! });
    }
    const m = mergeGradientTree(parts.reverse(), 32, 8);
    expect(m.count).toBe(32);
    for (let i = 0; i < whole.gradients.length; i++) expect(m.gradients[i]).toBeCloseTo(whole.gradients[i]!, 5);
  });

  it('treeNodeSlices cuts tree nodes: the largest node first, down to single micro-batches', () => {
    expect(treeNodeSlices(32, 8, 1)).toEqual([{ start: 0, end: 32 }]);
    expect(treeNodeSlices(32, 8, 2)).toEqual([
      { start: 0, end: 16 },
      { start: 16, end: 32 },
    ]);
    expect(treeNodeSlices(32, 8, 3)).toEqual([
      { start: 0, end: 8 },
      { start: 8, end: 16 },
      { start: 16, end: 32 },
    ]);
    expect(treeNodeSlices(32, 8, 9).map((s) => s.end - s.start)).toEqual([8, 8, 8, 8]);
    // 5 micro-batches: the left half takes the odd one; the last micro-batch is short
    expect(treeNodeSlices(36, 8, 2)).toEqual([
      { start: 0, end: 24 },
      { start: 24, end: 36 },
    ]);
    // a node re-cut on its own
    expect(treeNodeSlices(36, 8, 2, 0, 24)).toEqual([
      { start: 0, end: 16 },
      { start: 16, end: 24 },
    ]);
    expect(treeNodeSlices(36, 8, 3, 24, 36)).toEqual([
      { start: 24, end: 32 },
      { start: 32, end: 36 },
    ]);
    expect(() => treeNodeSlices(36, 8, 2, 4, 24)).toThrow(/micro-batch boundaries/);
    expect(treeNodeSlices(5, 0, 2)).toEqual([
      { start: 0, end: 3 },
      { start: 3, end: 5 },
    ]);
  });

  it.each([
    [32, 8],
    [27, 4],
    [45, 4],
    [8, 2],
  ])('batch %d, micro-batch %d: shares of lost workers re-cut into tree nodes, at random, give the bits of one process', async (n, micro) => {
    const all = samples(n);
    const r = await replica();
    const one = await computeTreeGradients(r, all, ctx, micro);
    const rnd = mulberry32(n * 31 + micro);
    for (let trial = 0; trial < 20; trial++) {
      // start with 1..4 workers' slices, then lose random slices and re-cut each among 1..3 survivors
      const ranges = treeNodeSlices(n, micro, 1 + Math.floor(rnd() * 4));
      for (let loss = Math.floor(rnd() * 4); loss > 0; loss--) {
        const i = Math.floor(rnd() * ranges.length);
        const lost = ranges[i]!;
        ranges.splice(i, 1, ...treeNodeSlices(n, micro, 1 + Math.floor(rnd() * 3), lost.start, lost.end));
      }
      const parts: RangedGradient[] = [];
      for (const { start, end } of ranges) {
        const g = await computeTreeGradients(r, all.slice(start, end), ctx, micro);
        parts.push({ ...g, gradients: g.gradients.slice(), start, end });
      }
      const m = mergeGradientTree(parts.reverse(), n, micro);
      expect(Array.from(m.gradients), `slices ${JSON.stringify(ranges)}`).toEqual(Array.from(one.gradients));
      expect([m.count, m.correct]).toEqual([one.count, one.correct]);
    }
  });

  it('rejects parts with a gap, an overlap or a short cover, naming the samples', () => {
    const g = (start: number, end: number): RangedGradient => ({ gradients: new Float32Array(2), loss: 0, count: end - start, correct: 0, start, end });
    expect(() => mergeGradientTree([g(0, 4), g(5, 8)], 8, 4)).toThrow(/4\.\.5 covered by no part/);
    expect(() => mergeGradientTree([g(0, 5), g(4, 8)], 8, 4)).toThrow(/covered twice/);
    expect(() => mergeGradientTree([g(0, 4)], 8, 4)).toThrow(/cover 4 of 8/);
  });

  it('leaves results it does not own intact', () => {
    const a: RangedGradient = { gradients: new Float32Array([1, 2]), loss: 1, count: 2, correct: 0, start: 0, end: 2 };
    const b: RangedGradient = { gradients: new Float32Array([3, 4]), loss: 1, count: 2, correct: 0, start: 2, end: 4 };
    const m = mergeGradientTree([a, b], 4, 2);
    expect(Array.from(m.gradients)).toEqual([2, 3]);
    expect(Array.from(a.gradients)).toEqual([1, 2]);
    const owned = mergeGradientTree([a, b], 4, 2, new Set([a.gradients]));
    expect(owned.gradients).toBe(a.gradients);
  });
});
