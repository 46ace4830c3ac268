import type { TensorInfo } from '@tensorflow/tfjs';
import type { NativeAddon } from '../addon.js';
import { alloc, f32, size, type CpuBackendLike, type NativeKernelBody } from './util.js';

/** Shapes of a (batched) matmul when the outer dims are equal or one side's are all 1; null otherwise. */
function plan(a: TensorInfo, b: TensorInfo, ta: boolean, tb: boolean) {
  if (a.shape.length < 2 || b.shape.length < 2) return null;
  const ra = a.shape.length;
  const rb = b.shape.length;
  const M = ta ? a.shape[ra - 1]! : a.shape[ra - 2]!;
  const Ka = ta ? a.shape[ra - 2]! : a.shape[ra - 1]!;
  const Kb = tb ? b.shape[rb - 1]! : b.shape[rb - 2]!;
  const N = tb ? b.shape[rb - 2]! : b.shape[rb - 1]!;
  if (Ka !== Kb) return null;
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const BA = size(outerA);
  const BB = size(outerB);
  let outer: number[];
  if (BA === 1) outer = outerB.length >= outerA.length ? outerB : outerA;
  else if (BB === 1) outer = outerA.length >= outerB.length ? outerA : outerB;
  else if (outerA.length === outerB.length && outerA.every((d, i) => d === outerB[i])) outer = outerA;
  else return null;
  if (size(outer) !== Math.max(BA, BB)) return null;
  if (M === 0 || N === 0 || Ka === 0 || BA === 0 || BB === 0) return null;
  return { BA, BB, M, N, K: Ka, outShape: [...outer, M, N] };
}

function run(
  addon: NativeAddon,
  backend: CpuBackendLike,
  a: TensorInfo | undefined,
  b: TensorInfo | undefined,
  attrs: Record<string, unknown>,
  bias: TensorInfo | undefined,
  relu: boolean,
): TensorInfo | null {
  const av = f32(backend, a);
  const bv = f32(backend, b);
  if (!a || !b || !av || !bv) return null;
  const ta = Boolean(attrs.transposeA);
  const tb = Boolean(attrs.transposeB);
  const p = plan(a, b, ta, tb);
  if (!p) return null;
  let biasv: Float32Array | null = null;
  if (bias) {
    if (size(bias.shape) !== p.N || bias.shape.slice(0, -1).some((d) => d !== 1) || (bias.shape.length === 0 && p.N !== 1)) return null;
    biasv = f32(backend, bias);
    if (!biasv) return null;
  }
  const c = alloc(size(p.outShape));
  addon.matMul(av, bv, c, [p.BA, p.BB, p.M, p.N, p.K], ta, tb, biasv, relu);
  return backend.makeTensorInfo(p.outShape, 'float32', c);
}

export function batchMatMulBody(addon: NativeAddon): NativeKernelBody {
  return ({ inputs, backend, attrs }) => run(addon, backend, inputs.a, inputs.b, attrs, undefined, false);
}

/** _FusedMatMul with an optional [N] bias and linear or relu activation. */
export function fusedMatMulBody(addon: NativeAddon): NativeKernelBody {
  return ({ inputs, backend, attrs }) => {
    const activation = (attrs.activation as string | undefined) ?? 'linear';
    if (inputs.preluActivationWeights || (activation !== 'linear' && activation !== 'relu')) return null;
    return run(addon, backend, inputs.a, inputs.b, attrs, inputs.bias, activation === 'relu');
  };
}
