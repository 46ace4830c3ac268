import type { DataType, TensorInfo } from '@tensorflow/tfjs';

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

/** Output array of a native kernel (one place to change if outputs ever get pooled). */
export function alloc(n: number): Float32Array {
  return new Float32Array(n);
}
