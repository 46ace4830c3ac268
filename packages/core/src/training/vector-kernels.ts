/**
 * The exchange's elementwise loops over whole gradients — the count-weighted merge of two gradients, the
 * finiteness check and the per-bucket sums of squares of the norms — in JS, or through compiled kernels (the
 * native addon's AVX-512 `mergeTwo`, `firstNonFinite` and `bucketSumsOfSquares`) set with setVectorKernels where
 * the addon loads. A kernel must give the JS loop's results bit for bit: the merge computes wa * a[i] + wb * b[i] in
 * double (two products and a sum, each rounded to double, never fused) and rounds once to float32; each bucket's
 * sum of squares adds double(x)^2 in index order.
 */

/** out[i] = float32(wa * a[i] + wb * b[i]); `out` may be `a` or `b`. */
export type MergeKernel = (out: Float32Array, a: Float32Array, b: Float32Array, wa: number, wb: number) => unknown;
/** The index of the first NaN or ±Infinity of `g`, or -1. */
export type NonFiniteKernel = (g: Float32Array) => number;

/** out[k] = the float64 sum of squares of bucket k of `g` ([k b, (k + 1) b), b = `bucketFloats`), in index order. */
export type SumsOfSquaresKernel = (g: Float32Array, bucketFloats: number, out: Float64Array) => unknown;

export interface VectorKernels {
  mergeTwo?: MergeKernel | undefined;
  firstNonFinite?: NonFiniteKernel | undefined;
  bucketSumsOfSquares?: SumsOfSquaresKernel | undefined;
}

/** Below this many elements the JS loop runs (a native call costs more than it saves). */
const KERNEL_MIN_LENGTH = 4096;
let kernels: VectorKernels = {};

/** Runs the exchange's loops through these kernels (an empty object: back to JS). */
export function setVectorKernels(next: VectorKernels): void {
  kernels = { ...next };
}

/** Which loops run compiled (for logs and tests). */
export function vectorKernelNames(): string[] {
  return Object.entries(kernels)
    .filter(([, k]) => k !== undefined)
    .map(([name]) => name);
}

/** out[i] = wa * a[i] + wb * b[i], rounded once to float32 (`out` may be `a` or `b`). */
export function mergeTwoInto(out: Float32Array, a: Float32Array, b: Float32Array, wa: number, wb: number): void {
  if (kernels.mergeTwo && out.length >= KERNEL_MIN_LENGTH) {
    kernels.mergeTwo(out, a, b, wa, wb);
    return;
  }
  for (let i = 0; i < out.length; i++) out[i] = wa * a[i]! + wb * b[i]!;
}

/** Index of the first NaN or ±Infinity in `g`, or -1 when every value is finite (one fast pass when all are). */
export function firstNonFinite(g: Float32Array): number {
  if (kernels.firstNonFinite && g.length >= KERNEL_MIN_LENGTH) return kernels.firstNonFinite(g);
  let bad = 0;
  for (let i = 0; i < g.length; i++) {
    const x = g[i]!;
    bad += x - x; // 0 for finite x, NaN for NaN and ±Infinity
  }
  if (bad === 0) return -1;
  for (let i = 0; i < g.length; i++) if (!Number.isFinite(g[i]!)) return i;
  return -1;
}

/**
 * The per-bucket float64 sums of squares of `g` through the compiled kernel, or undefined where none is set (or `g`
 * is short): the caller's JS loop then runs (buckets.ts).
 */
export function compiledBucketSumsOfSquares(g: Float32Array, bucketFloats: number, buckets: number): Float64Array | undefined {
  if (!kernels.bucketSumsOfSquares || g.length < KERNEL_MIN_LENGTH) return undefined;
  const out = new Float64Array(buckets);
  kernels.bucketSumsOfSquares(g, bucketFloats, out);
  return out;
}
