/**
 * Gradient and weight buckets: the flat trainable vector cut into fixed, contiguous ranges that travel, merge and
 * update one at a time (pipelined exchange, sharded summation). The boundaries depend only on the vector's size
 * and the bucket size, never on the worker or shard count, so every topology cuts the same buckets and sums the
 * same per-bucket norms in the same order.
 */
import { compiledBucketSumsOfSquares } from './vector-kernels.js';

/** Default bucket size: 1 Mi floats (4 MiB of fp32), about 9 buckets for VGG16's block5 + flatten head. */
export const DEFAULT_BUCKET_FLOATS = 1 << 20;

/** One bucket: the elements [start, end) of the flat vector. */
export interface BucketRange {
  start: number;
  end: number;
}

/**
 * The buckets of a flat vector of `size` floats, b = `bucketFloats`: [0, b), [b, 2b), ..., the last one shorter
 * when b does not divide `size`; none is empty (a vector of 0 floats has no bucket).
 */
export function bucketRanges(size: number, bucketFloats: number = DEFAULT_BUCKET_FLOATS): BucketRange[] {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`bucketRanges: size must be a non-negative integer, got ${size}`);
  if (!Number.isSafeInteger(bucketFloats) || bucketFloats < 1) {
    throw new RangeError(`bucketRanges: bucketFloats must be a positive integer, got ${bucketFloats}`);
  }
  const out: BucketRange[] = [];
  for (let start = 0; start < size; start += bucketFloats) out.push({ start, end: Math.min(size, start + bucketFloats) });
  return out;
}

/** Sum of squares of g[start, end), in float64, in index order. */
export function rangeSumOfSquares(g: Float32Array, start = 0, end = g.length): number {
  let s = 0;
  for (let i = start; i < end; i++) {
    const x = g[i]!;
    s += x * x;
  }
  return s;
}

/** The float64 sum of squares of each bucket of `g`, in bucket order (the native kernel's, the same bits, where set). */
export function bucketSumOfSquares(g: Float32Array, bucketFloats: number = DEFAULT_BUCKET_FLOATS): Float64Array {
  const ranges = bucketRanges(g.length, bucketFloats);
  const compiled = compiledBucketSumsOfSquares(g, bucketFloats, ranges.length);
  if (compiled) return compiled;
  const out = new Float64Array(ranges.length);
  ranges.forEach((r, k) => {
    out[k] = rangeSumOfSquares(g, r.start, r.end);
  });
  return out;
}

/** The L2 norm from per-bucket sums of squares: the square root of their sum taken in bucket order. */
export function normFromBucketSums(sums: ArrayLike<number>): number {
  let s = 0;
  for (let k = 0; k < sums.length; k++) s += sums[k]!;
  return Math.sqrt(s);
}
