import { DptrainError } from '../errors.js';
import type { OptimizerState } from './optimizers.js';
import { bucketRanges, DEFAULT_BUCKET_FLOATS, type BucketRange } from './buckets.js';

/**
 * How the flat trainable vector is cut for the sharded summation service: fixed buckets from element 0 (their
 * boundaries depend only on the vector's size and the bucket size, never on the worker or shard count), grouped
 * into S contiguous shard ranges balanced by size. A shard owns its range's gradient merge, optimizer state and
 * update (Adam, AdamW and SGD are elementwise, so a range updated alone has the bits of the same elements of a
 * whole-vector update).
 */

/** A half-open range [start, end) of the flat trainable vector. */
export type FloatRange = BucketRange;

/**
 * Cuts a vector of `size` floats into at most `shards` contiguous ranges on bucket boundaries, balanced by size:
 * range k ends at the bucket boundary nearest to (k + 1) * size / shards. Fewer ranges come back when there are
 * fewer buckets than shards (no range is empty).
 */
export function shardRanges(size: number, shards: number, bucketFloats: number = DEFAULT_BUCKET_FLOATS): FloatRange[] {
  if (!Number.isInteger(shards) || shards < 1) throw new DptrainError('E_CONFIG', `shard count must be a positive integer, got ${shards}`);
  const buckets = bucketRanges(size, bucketFloats);
  if (buckets.length === 0) return [];
  const s = Math.min(shards, buckets.length);
  const out: FloatRange[] = [];
  let first = 0; // first bucket of the next range
  for (let k = 0; k < s; k++) {
    const left = s - k; // ranges still to cut, this one included
    if (left === 1) {
      out.push({ start: buckets[first]!.start, end: size });
      break;
    }
    const target = ((k + 1) * size) / s;
    // the last bucket of this range: nearest boundary to the target, leaving one bucket for each later range
    let last = first;
    while (last + 1 < buckets.length - (left - 1) && Math.abs(buckets[last + 1]!.end - target) <= Math.abs(buckets[last]!.end - target)) last++;
    out.push({ start: buckets[first]!.start, end: buckets[last]!.end });
    first = last + 1;
  }
  return out;
}

/** Range [start, end) of an optimizer's state: the same iterations and learning rate, each slot sliced (copies). */
export function sliceOptimizerState(state: OptimizerState, range: FloatRange): OptimizerState {
  const slots: Record<string, Float32Array> = {};
  for (const [k, v] of Object.entries(state.slots)) slots[k] = v.slice(range.start, range.end);
  return { kind: state.kind, learningRate: state.learningRate, iterations: state.iterations, slots };
}

/**
 * The whole-vector state from the ranges' states (in range order, covering [0, size)): what a checkpoint stores.
 * Every range must be at the same iteration; a slot is present only when every range has it.
 */
export function joinOptimizerStates(parts: readonly { range: FloatRange; state: OptimizerState }[], size: number): OptimizerState {
  const first = parts[0];
  if (!first) throw new DptrainError('E_INTERNAL', 'joinOptimizerStates: no ranges');
  const slotNames = Object.keys(first.state.slots).filter((k) => parts.every((p) => p.state.slots[k]));
  const slots: Record<string, Float32Array> = Object.fromEntries(slotNames.map((k) => [k, new Float32Array(size)]));
  for (const p of parts) {
    if (p.state.iterations !== first.state.iterations || p.state.kind !== first.state.kind) {
      throw new DptrainError(
        'E_INTERNAL',
        `shard states disagree: range ${p.range.start}..${p.range.end} is ${p.state.kind} at iteration ${p.state.iterations}, range ${first.range.start}..${first.range.end} ${first.state.kind} at ${first.state.iterations}`,
      );
    }
    for (const k of slotNames) slots[k]!.set(p.state.slots[k]!, p.range.start);
  }
  return { kind: first.state.kind, learningRate: first.state.learningRate, iterations: first.state.iterations, slots };
}
