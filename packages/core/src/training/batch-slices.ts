import { DptrainError } from '../errors.js';

/**
 * Cutting a batch into the parts that workers compute: the one batch-cutting module.
 *
 * A batch of n samples is cut into micro-batches of `microBatch` samples (the last may be shorter); the batch's
 * gradient is merged along a fixed binary tree over them (see gradient-tree.ts): a node over micro-batches
 * [lo, hi) splits at `treeMid(lo, hi)`. A part that is a node of that tree merges to the same bits whoever
 * computes it, so the cluster hands out only tree nodes (`weightedTreeNodeSlices`), and a node re-cut the same
 * way (a lost worker's share) keeps the bits too.
 */

/** The samples [start, end) of a batch. */
export interface SampleRange {
  /** First sample covered. */
  start: number;
  /** One past the last sample covered. */
  end: number;
}

/** One peer's claim on a batch in `weightedTreeNodeSlices`. */
export interface SlicePeer {
  /** Relative share of the batch (a measured throughput, or a worker count): positive and finite. */
  weight: number;
  /** Most samples in one part given to this peer (its `--batch-capacity`). Default: no limit. */
  capacity?: number;
}

/** Where the tree splits the micro-batches [lo, hi): the left half takes the odd one. */
export function treeMid(lo: number, hi: number): number {
  return lo + Math.ceil((hi - lo) / 2);
}

/** Number of micro-batches of a batch of `n` samples (0 or negative `microBatch`: one, the whole batch). */
export function microBatchCount(n: number, microBatch: number): number {
  return microBatch > 0 ? Math.max(1, Math.ceil(n / microBatch)) : 1;
}

/**
 * Sizes of the contiguous slices that split `total` items among workers: near-equal when `workers` is a
 * count, proportional to the weights when it is a list (largest remainder, earlier workers first on ties).
 * Sizes sum to `total`; a worker may get 0 when there are fewer items than workers.
 */
export function sliceSizes(total: number, workers: number | readonly number[]): number[] {
  const weights = typeof workers === 'number' ? new Array<number>(workers).fill(1) : workers;
  if (weights.length === 0) throw new DptrainError('E_CONFIG', 'cannot split a batch among 0 workers');
  if (weights.some((w) => !(w > 0) || !Number.isFinite(w))) throw new DptrainError('E_CONFIG', `worker capacities must be positive: ${weights.join(',')}`);
  const sum = weights.reduce((a, b) => a + b, 0);
  const exact = weights.map((w) => (total * w) / sum);
  const sizes = exact.map((x) => Math.floor(x));
  let left = total - sizes.reduce((a, b) => a + b, 0);
  const order = exact.map((x, i) => ({ i, r: x - Math.floor(x) })).sort((a, b) => b.r - a.r || a.i - b.i);
  for (let k = 0; left > 0; k = (k + 1) % order.length, left--) {
    const i = (order[k] as { i: number }).i;
    sizes[i] = (sizes[i] as number) + 1;
  }
  return sizes;
}

/** Splits a global batch into contiguous slices, one per worker (see `sliceSizes`). */
export function splitBatch<T>(items: readonly T[], workers: number | readonly number[]): T[][] {
  const sizes = sliceSizes(items.length, workers);
  const out: T[][] = [];
  let at = 0;
  for (const s of sizes) {
    out.push(items.slice(at, at + s));
    at += s;
  }
  return out;
}

/** Cuts `items` into chunks of at most `size`. */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Contiguous ranges of `sizes` laid end to end from `start`, the empty ones left out. */
function rangesOf(sizes: readonly number[], start: number): SampleRange[] {
  const out: SampleRange[] = [];
  let at = start;
  for (const size of sizes) {
    if (size > 0) out.push({ start: at, end: at + size });
    at += size;
  }
  return out;
}

/**
 * Cuts a batch of `n` samples into at most `parts` contiguous slices [start, end) for the workers. With a
 * micro-batch, slices are whole micro-batches cut at ceil(i * K / parts) (K micro-batches), which are nodes of
 * the averaging tree when `parts` is a power of two or divides K; when the batch has fewer micro-batches than
 * `parts`, only K slices are made (the other workers sit that step out). Without one (0), near-equal slices.
 */
export function microBatchSlices(n: number, microBatch: number, parts: number): SampleRange[] {
  const k = microBatchCount(n, microBatch);
  if (!(microBatch > 0)) return rangesOf(sliceSizes(n, Math.max(1, Math.min(parts, n))), 0);
  const out: SampleRange[] = [];
  const p = Math.max(1, Math.min(parts, k));
  let prev = 0;
  for (let i = 1; i <= p; i++) {
    const end = Math.min(n, Math.ceil((i * k) / p) * microBatch);
    if (end > prev) out.push({ start: prev, end });
    prev = end;
  }
  return out;
}

/** Throws unless [start, end) of a batch of `n` lies on micro-batch boundaries. */
function checkBoundaries(what: string, n: number, microBatch: number, start: number, end: number): void {
  if (start < 0 || end > n || start > end || start % microBatch !== 0 || (end !== n && end % microBatch !== 0)) {
    throw new RangeError(`${what}: [${start}, ${end}) is not on micro-batch boundaries of ${microBatch} in a batch of ${n}`);
  }
}

/**
 * Cuts the samples [start, end) of a batch of `n` — which must be a node of the averaging tree (the whole batch,
 * or a range this function returned) — into at most `parts` contiguous ranges that are nodes of the tree too:
 * the node with the most micro-batches (the leftmost of equals) is split at the tree's cut until there are
 * `parts` nodes or only single micro-batches are left. Without a micro-batch (0): near-equal contiguous ranges.
 */
export function treeNodeSlices(n: number, microBatch: number, parts: number, start = 0, end = n): SampleRange[] {
  const want = Math.max(1, parts);
  if (!(microBatch > 0)) return rangesOf(sliceSizes(end - start, Math.max(1, Math.min(want, end - start))), start);
  checkBoundaries('treeNodeSlices', n, microBatch, start, end);
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
 * How many of `units` indivisible units each peer gets: in proportion to its weight (largest remainder), no
 * more than `caps[i]` per round; once every peer is full, another round starts with the caps again (a peer then
 * gets several parts, one after the other). A peer with a cap of 0 units gets none.
 */
function waterFill(units: number, weights: readonly number[], caps: readonly number[]): number[] {
  const counts = weights.map(() => 0);
  const room = [...caps];
  let left = units;
  while (left > 0) {
    const open = room.map((r, i) => (r > 0 ? i : -1)).filter((i) => i >= 0);
    if (open.length === 0) {
      // every peer is full for this round: the next round starts
      for (let i = 0; i < room.length; i++) room[i] = caps[i]!;
      continue;
    }
    const sizes = sliceSizes(
      left,
      open.map((i) => weights[i]!),
    );
    open.forEach((i, k) => {
      const take = Math.min(sizes[k]!, room[i]!);
      counts[i]! += take;
      room[i]! -= take;
      left -= take;
    });
  }
  return counts;
}

/**
 * Gives each peer that can hold a unit at least one when there are as many units as such peers, taking it from
 * the peer with the most (the first of equals): a peer left out of every step is never measured again, so its
 * weight could never show that it got faster (a worker's first step after a join is slow, with cold caches).
 */
function everyoneTakesPart(counts: number[], unitCaps: readonly number[]): number[] {
  const open = unitCaps.flatMap((c, i) => (c > 0 ? [i] : []));
  if (counts.reduce((a, b) => a + b, 0) < open.length) return counts;
  for (const i of open) {
    if (counts[i]! > 0) continue;
    let donor = 0;
    for (let j = 1; j < counts.length; j++) if (counts[j]! > counts[donor]!) donor = j;
    counts[donor]!--;
    counts[i] = 1;
  }
  return counts;
}

/** The nodes of the tree under [nodeLo, nodeHi) whose union is [lo, hi) ∩ that node, fewest first (canonical cover). */
function coverNodes(lo: number, hi: number, nodeLo: number, nodeHi: number, out: [number, number][]): void {
  if (hi <= nodeLo || lo >= nodeHi) return;
  if (lo <= nodeLo && nodeHi <= hi) {
    out.push([nodeLo, nodeHi]);
    return;
  }
  const mid = treeMid(nodeLo, nodeHi);
  coverNodes(lo, hi, nodeLo, mid, out);
  coverNodes(lo, hi, mid, nodeHi, out);
}

/**
 * Cuts the samples [start, end) of a batch of `n` — a node of the micro-batch tree: the whole batch (the
 * default), or a node this function returned (a lost peer's share, re-cut among the survivors) — among
 * `peers` in proportion to their weights, as whole nodes of the tree:
 *
 * - peer i gets about weight_i / Σ weights of the micro-batches, rounded to whole micro-batches (largest
 *   remainder; peers in order, each a contiguous run), but no more than its capacity while another peer has
 *   room; when the capacities together are below the batch, peers take further parts in rounds; with at least
 *   as many micro-batches as peers, every peer gets one or more (so that each keeps being measured);
 * - each peer's run is given as the fewest tree nodes that cover it, and a node larger than the peer's capacity
 *   is split at the tree's cut until it fits: every part is a node, so the parts merge to the bits of one
 *   process, whatever the weights;
 * - every sample is in exactly one part.
 *
 * Returns one list of ranges per peer (in batch order; empty for a peer that gets nothing). Without a
 * micro-batch (0) there is no tree: contiguous ranges in proportion to the weights, each cut to the capacity.
 * E_BATCH_CAPACITY when no peer can hold one micro-batch.
 */
export function weightedTreeNodeSlices(n: number, microBatch: number, peers: readonly SlicePeer[], range: SampleRange = { start: 0, end: n }): SampleRange[][] {
  const { start, end } = range;
  if (peers.length === 0) throw new DptrainError('E_CONFIG', 'cannot split a batch among 0 workers');
  const caps = peers.map((p) => p.capacity ?? Number.POSITIVE_INFINITY);
  const weights = peers.map((p) => p.weight);
  if (end <= start) return peers.map(() => []);
  const unit = microBatch > 0 ? microBatch : 1;
  if (microBatch > 0) checkBoundaries('weightedTreeNodeSlices', n, microBatch, start, end);
  const unitCaps = caps.map((c) => (Number.isFinite(c) ? Math.floor(c / unit) : Number.POSITIVE_INFINITY));
  if (unitCaps.every((c) => !(c > 0))) {
    throw new DptrainError(
      'E_BATCH_CAPACITY',
      `no worker can take one micro-batch of ${unit} samples: batch capacities ${caps.join(', ')} (raise --batch-capacity or lower --micro-batch)`,
    );
  }
  const lo = start / unit;
  const hi = Math.ceil(end / unit);
  const counts = everyoneTakesPart(waterFill(hi - lo, weights, unitCaps), unitCaps);
  const toSamples = ([a, b]: [number, number]): SampleRange => ({ start: a * unit, end: Math.min(end, b * unit) });
  const out: SampleRange[][] = [];
  let at = lo;
  for (let i = 0; i < peers.length; i++) {
    const runEnd = at + counts[i]!;
    const nodes: [number, number][] = [];
    if (microBatch > 0) coverNodes(at, runEnd, lo, hi, nodes);
    else if (runEnd > at) nodes.push([at, runEnd]);
    const fitted: SampleRange[] = [];
    for (const node of nodes) fitted.push(...fitNode(node, caps[i]!, microBatch > 0, toSamples));
    out.push(fitted);
    at = runEnd;
  }
  return out;
}

/** Cuts a node into parts of at most `capacity` samples: at the tree's cut with a tree, else near-equal. */
function fitNode(node: [number, number], capacity: number, tree: boolean, toSamples: (n: [number, number]) => SampleRange): SampleRange[] {
  const r = toSamples(node);
  if (r.end - r.start <= capacity) return [r];
  if (!tree) {
    const parts = Math.ceil((r.end - r.start) / capacity);
    return rangesOf(sliceSizes(r.end - r.start, parts), r.start);
  }
  const mid = treeMid(node[0], node[1]);
  return [...fitNode([node[0], mid], capacity, tree, toSamples), ...fitNode([mid, node[1]], capacity, tree, toSamples)];
}
