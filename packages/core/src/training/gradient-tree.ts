import type { Sample } from '../data/types.js';
import { sliceSizes } from './sharding.js';
import type { GradientResult, Replica, StepContext } from './types.js';
import { withErrorContext } from '../util/error-context.js';
import { computeTreeGradientsOnDevice, isDeviceStepReplica } from './device-step.js';
import { mergeTwoInto } from './vector-kernels.js';

/**
 * Deterministic gradient averaging over micro-batches.
 *
 * A global batch of n samples is cut into micro-batches of `microBatch` samples (the last may be shorter). The
 * batch's gradient is the mean of the micro-batch gradients, combined pairwise along a fixed binary tree over the
 * micro-batches: a node over micro-batches [lo, hi) splits at lo + ceil((hi - lo) / 2), and two halves with
 * nl and nr samples combine as (nl / (nl + nr)) * left + (nr / (nl + nr)) * right, rounded once to float32.
 *
 * A worker whose slice of the batch is a node of that tree (the coordinator cuts slices on micro-batch
 * boundaries, see `microBatchSlices`) computes that node's mean with the same tree, and the coordinator combines
 * the workers' means along the upper part of it; so a power-of-two number of workers (and others whose slices
 * fall on tree nodes, such as 3 workers over 4 micro-batches), or `dptrain train` in one process, produce the
 * same bits. The cluster cuts slices, and re-cuts a lost worker's share, into tree nodes (`treeNodeSlices`), so
 * faults do not change the bits either. Slices that are not tree nodes (from `microBatchSlices` with other
 * worker counts) are still combined exactly once each, in batch order where they cut the tree, with the same
 * formula.
 */

/** A gradient result for the samples [start, end) of a batch. */
export interface RangedGradient extends GradientResult {
  /** First sample of the batch covered. */
  start: number;
  /** One past the last sample covered. */
  end: number;
}

/**
 * The count-weighted mean of two gradient results, rounded once per element. Writes into `into` when given (it
 * may be `a.gradients`), else into a new array.
 */
export function meanOfTwo(a: GradientResult, b: GradientResult, into?: Float32Array): GradientResult {
  const n = a.count + b.count;
  if (a.gradients.length !== b.gradients.length) {
    throw new RangeError(`meanOfTwo: gradients of ${a.gradients.length} and ${b.gradients.length} values`);
  }
  const wa = n > 0 ? a.count / n : 0.5;
  const wb = n > 0 ? b.count / n : 0.5;
  const out = into ?? new Float32Array(a.gradients.length);
  mergeTwoInto(out, a.gradients, b.gradients, wa, wb);
  return { gradients: out, loss: wa * a.loss + wb * b.loss, count: n, correct: a.correct + b.correct };
}

/** Where the tree splits the micro-batches [lo, hi): the left half takes the odd one. */
function treeMid(lo: number, hi: number): number {
  return lo + Math.ceil((hi - lo) / 2);
}

/** meanOfTwo written into whichever operand's array is in `owned` (else a new array); the result joins `owned`. */
function mergeOwned(a: GradientResult, b: GradientResult, owned: Set<Float32Array>): GradientResult {
  const into = owned.has(a.gradients) ? a.gradients : owned.has(b.gradients) ? b.gradients : undefined;
  const r = meanOfTwo(a, b, into);
  owned.add(r.gradients);
  return r;
}

/** Number of micro-batches of a batch of `n` samples (0 or negative `microBatch`: one, the whole batch). */
export function microBatchCount(n: number, microBatch: number): number {
  return microBatch > 0 ? Math.max(1, Math.ceil(n / microBatch)) : 1;
}

/**
 * Cuts a batch of `n` samples into at most `parts` contiguous slices [start, end) for the workers. With a
 * micro-batch, slices are whole micro-batches cut at ceil(i * K / parts) (K micro-batches), which are nodes of
 * the averaging tree when `parts` is a power of two or divides K; when the batch has fewer micro-batches than
 * `parts`, only K slices are made (the other workers sit that step out). Without one (0), near-equal slices.
 */
export function microBatchSlices(n: number, microBatch: number, parts: number): { start: number; end: number }[] {
  const k = microBatchCount(n, microBatch);
  const out: { start: number; end: number }[] = [];
  if (microBatch > 0) {
    const p = Math.max(1, Math.min(parts, k));
    let prev = 0;
    for (let i = 1; i <= p; i++) {
      const end = Math.min(n, Math.ceil((i * k) / p) * microBatch);
      if (end > prev) out.push({ start: prev, end });
      prev = end;
    }
    return out;
  }
  let at = 0;
  for (const size of sliceSizes(n, Math.max(1, Math.min(parts, n)))) {
    if (size > 0) out.push({ start: at, end: at + size });
    at += size;
  }
  return out;
}

/**
 * Cuts the samples [start, end) of a batch of `n` — which must be a node of the averaging tree (the whole batch,
 * or a range this function returned) — into at most `parts` contiguous ranges that are nodes of the tree too:
 * the node with the most micro-batches (the leftmost of equals) is split at the tree's cut until there are
 * `parts` nodes or only single micro-batches are left. Gradients of such ranges merge along the tree exactly as
 * the whole batch's would, so a share re-cut this way (a lost worker's) leaves the step's bits unchanged.
 * Without a micro-batch (0): near-equal contiguous ranges.
 */
export function treeNodeSlices(n: number, microBatch: number, parts: number, start = 0, end = n): { start: number; end: number }[] {
  const want = Math.max(1, parts);
  if (!(microBatch > 0)) {
    const out: { start: number; end: number }[] = [];
    let at = start;
    for (const size of sliceSizes(end - start, Math.max(1, Math.min(want, end - start)))) {
      if (size > 0) out.push({ start: at, end: at + size });
      at += size;
    }
    return out;
  }
  if (start % microBatch !== 0 || (end !== n && end % microBatch !== 0)) {
    throw new RangeError(`treeNodeSlices: [${start}, ${end}) is not on micro-batch boundaries of ${microBatch}`);
  }
  const nodes: [number, number][] = [[start / microBatch, Math.ceil(end / microBatch)]];
  while (nodes.length < want) {
    let best = -1;
    for (let i = 0; i < nodes.length; i++) {
      const [lo, hi] = nodes[i]!;
      if (hi - lo >= 2 && (best < 0 || hi - lo > nodes[best]![1] - nodes[best]![0])) best = i;
    }
    if (best < 0) break;
    const [lo, hi] = nodes[best]!;
    const mid = treeMid(lo, hi);
    nodes.splice(best, 1, [lo, mid], [mid, hi]);
  }
  return nodes.map(([lo, hi]) => ({ start: lo * microBatch, end: Math.min(n, hi * microBatch) }));
}

/**
 * Combines results that cover a batch of `n` samples (each sample exactly once) into the batch's mean, along
 * the micro-batch tree where the parts allow it (see the module comment). Results whose arrays are listed in
 * `owned` may be overwritten (the merged result reuses one of them); others are left intact.
 */
export function mergeGradientTree(parts: readonly RangedGradient[], n: number, microBatch: number, owned?: Set<Float32Array>): GradientResult {
  const sorted = parts.filter((p) => p.end > p.start).sort((a, b) => a.start - b.start);
  let at = 0;
  for (const p of sorted) {
    if (p.start !== at)
      throw new RangeError(`mergeGradientTree: samples ${Math.min(at, p.start)}..${Math.max(at, p.start)} covered ${p.start > at ? 'by no part' : 'twice'}`);
    at = p.end;
  }
  if (at !== n) throw new RangeError(`mergeGradientTree: parts cover ${at} of ${n} samples`);
  const first = sorted[0];
  if (!first) throw new RangeError('mergeGradientTree: nothing to merge');
  const mine = owned ?? new Set<Float32Array>();
  const merge = (a: GradientResult, b: GradientResult): GradientResult => mergeOwned(a, b, mine);
  const size = microBatch > 0 ? microBatch : n;
  const node = (ps: readonly RangedGradient[], lo: number, hi: number): GradientResult => {
    if (ps.length === 1) return ps[0]!;
    if (hi - lo >= 2) {
      const mid = treeMid(lo, hi);
      const cut = Math.min(n, mid * size);
      if (!ps.some((p) => p.start < cut && p.end > cut)) {
        const left = ps.filter((p) => p.end <= cut);
        const right = ps.filter((p) => p.start >= cut);
        if (left.length > 0 && right.length > 0) return merge(node(left, lo, mid), node(right, mid, hi));
      }
    }
    // parts that straddle the tree's cut (or split one micro-batch): in batch order
    return ps.slice(1).reduce<GradientResult>((acc, p) => merge(acc, p), ps[0]!);
  };
  const r = node(sorted, 0, microBatchCount(n, microBatch));
  return { gradients: r.gradients, loss: r.loss, count: r.count, correct: r.correct };
}

/**
 * The mean gradient of `samples` computed one micro-batch at a time on `replica` and combined along the tree
 * (on the device when the replica runs the device step).
 * Each micro-batch result is consumed before the replica's next-but-one call (safe with a replica that reuses
 * two gradient buffers in turn); merged results are new arrays.
 */
export async function computeTreeGradients(replica: Replica, samples: Sample[], ctx: StepContext, microBatch: number): Promise<GradientResult> {
  // an error on the way out says which phase and step it happened in (ctx.step counts the steps done before this one)
  return withErrorContext({ phase: ctx.phase, step: ctx.step + 1 }, () => treeGradients(replica, samples, ctx, microBatch));
}

async function treeGradients(replica: Replica, samples: Sample[], ctx: StepContext, microBatch: number): Promise<GradientResult> {
  // the device step (device-step.ts): the same tree on the device, one read per step
  if (isDeviceStepReplica(replica)) return computeTreeGradientsOnDevice(replica, samples, ctx, microBatch);
  const n = samples.length;
  const k = microBatchCount(n, microBatch);
  if (k <= 1) return replica.computeGradients(samples, ctx);
  const owned = new Set<Float32Array>();
  const node = async (lo: number, hi: number): Promise<GradientResult> => {
    if (hi - lo === 1) return replica.computeGradients(samples.slice(lo * microBatch, Math.min(n, hi * microBatch)), ctx);
    const mid = treeMid(lo, hi);
    const left = await node(lo, mid);
    return mergeOwned(left, await node(mid, hi), owned);
  };
  return node(0, k);
}
