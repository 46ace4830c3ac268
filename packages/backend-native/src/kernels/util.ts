import type { DataType, TensorInfo } from '@tensorflow/tfjs';
import { outputPool } from '../output-pool.js';

/** The parts of tfjs's MathBackendCPU the native kernels use (its typed arrays, read and written in place). */
export interface CpuBackendLike {
  data: { get(dataId: object): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: DataType, values?: Float32Array | Uint8Array): TensorInfo;
}

/** The float32 storage of a tensor on the cpu backend, or null if it is not plain float32 data. */
export function f32(backend: CpuBackendLike, t: TensorInfo | undefined | null): Float32Array | null {
  if (t == null || t.dtype !== 'float32') return null;
  const values = backend.data.get(t.dataId).values;
  return values instanceof Float32Array ? values : null;
}

export function size(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Kernel bodies return null when the case is not covered natively; the cpu kernel runs instead. */
export type NativeKernelBody = (args: {
  inputs: Record<string, TensorInfo | undefined>;
  backend: CpuBackendLike;
  attrs: Record<string, unknown>;
}) => TensorInfo | null;

/**
 * Output array of a native kernel, NOT zero-filled: every kernel that calls this writes each element of its output
 * (oneDNN primitives and reorders, the addon's loops; MaxPoolGrad clears its own). Zero-filling them cost a pass
 * over ~60 MB per VGG16 block5 step. Big ones come from the output pool (recycled once their tensor is disposed);
 * small ones from V8's zeroed allocation (cheaper there).
 */
export function alloc(n: number): Float32Array {
  return outputPool.take(n);
}
