/**
 * The exchange's elementwise loops over whole gradients — the count-weighted merge of two gradients and the
 * finiteness check — in JS, or through compiled kernels (the native addon's AVX-512 `mergeTwo` and
 * `firstNonFinite`) set with setVectorKernels where the addon loads. A kernel must give the JS loop's results
 * bit for bit: the merge computes wa * a[i] + wb * b[i] in double (two products and a sum, each rounded to
 * double, never fused) and rounds once to float32.
 */

/** out[i] = float32(wa * a[i] + wb * b[i]); `out` may be `a` or `b`. */
export type MergeKernel = (out: Float32Array, a: Float32Array, b: Float32Array, wa: number, wb: number) => unknown;
/** The index of the first NaN or ±Infinity of `g`, or -1. */
export type NonFiniteKernel = (g: Float32Array) => number;

export interface VectorKernels {
  mergeTwo?: MergeKernel | undefined;
  firstNonFinite?: NonFiniteKernel | undefined;
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
