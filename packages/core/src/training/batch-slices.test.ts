import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import type { Sample } from '../data/types.js';
import { mulberry32 } from '../util/rng.js';
import { isDptrainError } from '../errors.js';
import { microBatchCount, treeMid, weightedTreeNodeSlices, type SampleRange, type SlicePeer } from './batch-slices.js';
import { computeTreeGradients, mergeGradientTree, type RangedGradient } from './gradient-tree.js';
import { LinearReplica } from './linear-replica.testutil.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Every node of the micro-batch tree of a batch of `n`, as sample ranges. */
function treeNodes(n: number, micro: number): Set<string> {
  const out = new Set<string>();
  const walk = (lo: number, hi: number): void => {
    out.add(`${lo * micro}:${Math.min(n, hi * micro)}`);
    if (hi - lo < 2) return;
    const mid = treeMid(lo, hi);
    walk(lo, mid);
    walk(mid, hi);
  };
  walk(0, microBatchCount(n, micro));
  return out;
}

const size = (r: SampleRange): number => r.end - r.start;
const total = (rs: readonly SampleRange[]): number => rs.reduce((a, r) => a + size(r), 0);

/** Checks the contract of weightedTreeNodeSlices on one case; returns the shares. */
function checkCase(n: number, micro: number, peers: SlicePeer[], range: SampleRange = { start: 0, end: n }): SampleRange[][] {
  const shares = weightedTreeNodeSlices(n, micro, peers, range);
  const what = JSON.stringify({ n, micro, peers, range, shares });
  expect(shares.length, what).toBe(peers.length);
  // every sample of the range exactly once
  const all = shares.flat().sort((a, b) => a.start - b.start);
  let at = range.start;
  for (const r of all) {
    expect(r.start, what).toBe(at);
    expect(r.end, what).toBeGreaterThan(r.start);
    at = r.end;
  }
  expect(at, what).toBe(range.end);
  const nodes = treeNodes(n, micro);
  shares.forEach((share, i) => {
    for (const r of share) {
      // every part is a node of the tree and fits its peer's capacity
      if (micro > 0) expect(nodes.has(`${r.start}:${r.end}`), `${what}: part ${r.start}..${r.end} is not a tree node`).toBe(true);
      expect(size(r), what).toBeLessThanOrEqual(peers[i]!.capacity ?? Number.POSITIVE_INFINITY);
    }
  });
  return shares;
}

describe('weightedTreeNodeSlices', () => {
  it('gives shares in proportion to the weights, as tree nodes', () => {
    // equal weights over 4 micro-batches: one node each
    expect(weightedTreeNodeSlices(32, 8, [{ weight: 1 }, { weight: 1 }])).toEqual([[{ start: 0, end: 16 }], [{ start: 16, end: 32 }]]);
    // a twice-as-fast peer: 3 of 4 micro-batches (2.67 rounded), as the nodes [0, 16) and [16, 24)
    expect(weightedTreeNodeSlices(32, 8, [{ weight: 2 }, { weight: 1 }])).toEqual([
      [
        { start: 0, end: 16 },
        { start: 16, end: 24 },
      ],
      [{ start: 24, end: 32 }],
    ]);
    // 4x against 1x over 8 micro-batches: 6.4 → 6 and 2
    const shares = checkCase(64, 8, [{ weight: 4 }, { weight: 1 }]);
    expect(shares.map(total)).toEqual([48, 16]);
    // fewer micro-batches than peers: the rest sit out
    expect(weightedTreeNodeSlices(16, 8, [{ weight: 1 }, { weight: 1 }, { weight: 1 }]).map(total)).toEqual([8, 8, 0]);
  });

  it('never gives a part above a capacity, and fills the others first', () => {
    // the fast peer can hold only 8: it gets one micro-batch, the slow one the rest
    const capped = checkCase(32, 8, [
      { weight: 10, capacity: 8 },
      { weight: 1, capacity: 64 },
    ]);
    expect(capped.map(total)).toEqual([8, 24]);
    // capacities together below the batch: parts in rounds, none above its capacity
    const rounds = checkCase(64, 8, [
      { weight: 1, capacity: 16 },
      { weight: 1, capacity: 8 },
    ]);
    expect(rounds.map(total)).toEqual([40, 24]);
    // without a micro-batch: contiguous ranges cut to the capacity
    expect(checkCase(10, 0, [{ weight: 1, capacity: 3 }, { weight: 1 }]).map((s) => s.map(size))).toEqual([[3], [7]]);
    expect(
      checkCase(10, 0, [
        { weight: 1, capacity: 3 },
        { weight: 1, capacity: 3 },
      ]).map((s) => s.map(size)),
    ).toEqual([
      [3, 2],
      [3, 2],
    ]);
  });

  it('refuses capacities that cannot hold one micro-batch, with E_BATCH_CAPACITY', () => {
    let err: unknown;
    try {
      weightedTreeNodeSlices(32, 8, [{ weight: 1, capacity: 4 }]);
    } catch (e) {
      err = e;
    }
    expect(isDptrainError(err, 'E_BATCH_CAPACITY')).toBe(true);
    expect(String(err)).toMatch(/one micro-batch of 8 samples: batch capacities 4/);
    expect(() => weightedTreeNodeSlices(36, 8, [{ weight: 1 }], { start: 4, end: 24 })).toThrow(/micro-batch boundaries/);
  });

  it('leaves no peer out while there are enough micro-batches: a starved peer could never be measured again', () => {
    // weights 20:1 over 4 micro-batches: 3.8 and 0.2 would round to 4 and 0; the slow peer keeps one
    expect(weightedTreeNodeSlices(32, 8, [{ weight: 20 }, { weight: 1 }]).map((s) => s.map(size))).toEqual([[16, 8], [8]]);
    // fewer micro-batches than peers: some sit the step out, as before
    expect(weightedTreeNodeSlices(16, 8, [{ weight: 20 }, { weight: 1 }, { weight: 1 }]).map(total)).toEqual([16, 0, 0]);
  });

  it('property: random totals, micro-batches, weights and capacities: each sample once, caps kept, every part a tree node', () => {
    const rnd = mulberry32(15);
    for (let trial = 0; trial < 2000; trial++) {
      const micro = [0, 1, 2, 3, 4, 8][Math.floor(rnd() * 6)]!;
      const n = 1 + Math.floor(rnd() * 200);
      const peers: SlicePeer[] = Array.from({ length: 1 + Math.floor(rnd() * 6) }, () => ({
        weight: 0.05 + rnd() * 20,
        ...(rnd() < 0.6 ? { capacity: Math.max(micro, 1) + Math.floor(rnd() * 64) } : {}),
      }));
      const shares = checkCase(n, micro, peers);
      // a share re-cut among random survivors (a lost peer's) stays inside its nodes and keeps every property
      const lost = shares.find((s) => s.length > 0)!;
      for (const node of lost) checkCase(n, micro, peers.slice(0, 1 + Math.floor(rnd() * peers.length)), node);
      const unit = Math.max(micro, 1);
      const units = Math.ceil(n / unit);
      // with at least as many micro-batches as peers, every peer takes part (each keeps being measured)
      if (units >= peers.length) for (const s of shares) expect(total(s)).toBeGreaterThan(0);
      // without capacities the shares follow the weights to within one micro-batch (plus the short last one), where
      // the weights give every peer at least one
      const sum = peers.reduce((a, p) => a + p.weight, 0);
      if (peers.every((p) => p.capacity === undefined && (units * p.weight) / sum >= 1)) {
        shares.forEach((s, i) => expect(Math.abs(total(s) - (n * peers[i]!.weight) / sum)).toBeLessThanOrEqual(2 * unit));
      }
    }
  });

  it('property: the parts merge to the bits of one process, whatever the weights and capacities', async () => {
    const replica = new LinearReplica();
    await replica.setPhase('fine_tune');
    const ctx = { phase: 'fine_tune' as const, epoch: 0, step: 0 };
    const rnd = mulberry32(16);
    for (const [n, micro] of [
      [32, 8],
      [27, 4],
      [45, 4],
      [13, 2],
    ] as const) {
      const samples: Sample[] = Array.from({ length: n }, (_, i) => ({ split: 'labelled', index: i, name: `${i}.jpg`, path: `/x/${i}.jpg`, label: i % 3 }));
      const one = await computeTreeGradients(replica, samples, ctx, micro);
      for (let trial = 0; trial < 10; trial++) {
        const peers = Array.from({ length: 1 + Math.floor(rnd() * 4) }, () => ({ weight: 0.1 + rnd() * 5, capacity: micro * (1 + Math.floor(rnd() * 4)) }));
        let ranges = weightedTreeNodeSlices(n, micro, peers).flat();
        // and a lost part re-cut among the others
        const lost = ranges[Math.floor(rnd() * ranges.length)]!;
        ranges = [...ranges.filter((r) => r !== lost), ...weightedTreeNodeSlices(n, micro, peers.slice(1).length > 0 ? peers.slice(1) : peers, lost).flat()];
        const parts: RangedGradient[] = [];
        for (const { start, end } of ranges) {
          const g = await computeTreeGradients(replica, samples.slice(start, end), ctx, micro);
          parts.push({ ...g, gradients: g.gradients.slice(), start, end });
        }
        const m = mergeGradientTree(parts.reverse(), n, micro);
        expect(Array.from(m.gradients), JSON.stringify({ n, micro, peers, ranges })).toEqual(Array.from(one.gradients));
        expect([m.count, m.correct]).toEqual([one.count, one.correct]);
      }
    }
  });
});
