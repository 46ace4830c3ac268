import type { TensorInfo } from '@tensorflow/tfjs';
import { f32, size, type CpuBackendLike, type NativeKernelBody } from './util.js';

// Tight typed-array loops (no native call: these are memory-bound and V8 runs them at memory speed) for the
// ClipByValue / Relu6 gradient, `where(x >= lo && x <= hi, dy, 0)`, which tfjs cpu runs through its generic
// broadcasting kernels. Same-shape operands (or a scalar second operand for the comparisons) only.

function bool(backend: CpuBackendLike, t: TensorInfo | undefined): Uint8Array | null {
  if (t == null || t.dtype !== 'bool') return null;
  const v = backend.data.get(t.dataId).values;
  return v instanceof Uint8Array ? v : null;
}
const sameShape = (a: number[], b: number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** GreaterEqual / LessEqual of float32 tensors of the same shape, or against a float32 scalar. */
export function compareBody(kernel: 'GreaterEqual' | 'LessEqual'): NativeKernelBody {
  return ({ inputs, backend }) => {
    const { a, b } = inputs;
    const av = f32(backend, a);
    const bv = f32(backend, b);
    if (!a || !b || !av || !bv) return null;
    const n = size(a.shape);
    const scalar = size(b.shape) === 1 && b.shape.length <= a.shape.length;
    if (!scalar && !sameShape(a.shape, b.shape)) return null;
    const out = new Uint8Array(n);
    if (scalar) {
      const s = bv[0]!;
      if (kernel === 'GreaterEqual') for (let i = 0; i < n; i++) out[i] = av[i]! >= s ? 1 : 0;
      else for (let i = 0; i < n; i++) out[i] = av[i]! <= s ? 1 : 0;
    } else if (kernel === 'GreaterEqual') {
      for (let i = 0; i < n; i++) out[i] = av[i]! >= bv[i]! ? 1 : 0;
    } else {
      for (let i = 0; i < n; i++) out[i] = av[i]! <= bv[i]! ? 1 : 0;
    }
    return backend.makeTensorInfo(a.shape, 'bool', out);
  };
}

/** LogicalAnd of two bool tensors of the same shape. */
export function logicalAndBody(): NativeKernelBody {
  return ({ inputs, backend }) => {
    const { a, b } = inputs;
    const av = bool(backend, a);
    const bv = bool(backend, b);
    if (!a || !b || !av || !bv || !sameShape(a.shape, b.shape)) return null;
    const n = size(a.shape);
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = av[i]! && bv[i]! ? 1 : 0;
    return backend.makeTensorInfo(a.shape, 'bool', out);
  };
}

/** Select (where) with a bool condition and float32 branches, all of the same shape. */
export function selectBody(): NativeKernelBody {
  return ({ inputs, backend }) => {
    const { condition, t, e } = inputs;
    const cv = bool(backend, condition);
    const tv = f32(backend, t);
    const ev = f32(backend, e);
    if (!condition || !t || !e || !cv || !tv || !ev) return null;
    if (!sameShape(condition.shape, t.shape) || !sameShape(t.shape, e.shape)) return null;
    const n = size(t.shape);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = cv[i] ? tv[i]! : ev[i]!;
    return backend.makeTensorInfo(t.shape, 'float32', out);
  };
}
