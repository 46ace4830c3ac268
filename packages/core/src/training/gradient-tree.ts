import type { Sample } from '../data/types.js';
import { microBatchCount, treeMid } from './batch-slices.js';
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
 * boundaries, see batch-slices.ts) computes that node's mean with the same tree, and the coordinator combines
 * the workers' means along the upper part of it; so a power-of-two number of workers (and others whose slices
 * fall on tree nodes, such as 3 workers over 4 micro-batches), or `dptrain train` in one process, produce the
 * same bits. The cluster cuts slices, and re-cuts a lost worker's share, into tree nodes (`weightedTreeNodeSlices`), so
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

/** meanOfTwo written into whichever operand's array is in `owned` (else a new array); the result joins `owned`. */
function mergeOwned(a: GradientResult, b: GradientResult, owned: Set<Float32Array>): GradientResult {
  const into = owned.has(a.gradients) ? a.gradients : owned.has(b.gradients) ? b.gradients : undefined;
  const r = meanOfTwo(a, b, into);
  owned.add(r.gradients);
  return r;
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
