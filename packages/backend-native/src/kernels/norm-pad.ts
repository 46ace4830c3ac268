import type { NativeAddon } from '../addon.js';
import { alloc, f32, size, type CpuBackendLike, type NativeKernelBody } from './util.js';
import * as tf from '@tensorflow/tfjs';
import type { TensorInfo } from '@tensorflow/tfjs';

/** PadV2 (constant padding, any rank up to 8). */
export function padBody(addon: NativeAddon): NativeKernelBody {
  return ({ inputs, backend, attrs }) => {
    const { x } = inputs;
    const xv = f32(backend, x);
    const paddings = attrs.paddings as [number, number][] | undefined;
    if (!x || !xv || !paddings || paddings.length !== x.shape.length || x.shape.length === 0 || x.shape.length > 8) return null;
    if (paddings.some((p) => p.length !== 2 || p[0] < 0 || p[1] < 0)) return null;
    const outShape = x.shape.map((d, i) => paddings[i]![0] + d + paddings[i]![1]);
    const out = alloc(size(outShape));
    if (size(x.shape) === 0) out.fill(Number(attrs.constantValue ?? 0));
    else
      addon.pad(
        xv,
        x.shape,
        out,
        outShape,
        paddings.map((p) => p[0]),
        Number(attrs.constantValue ?? 0),
      );
    return backend.makeTensorInfo(outShape, 'float32', out);
  };
}

/** A per-channel parameter of length 1 or C expanded to C floats (null: another length, left to the cpu kernel). */
function perChannel(backend: CpuBackendLike, t: TensorInfo | undefined, c: number, dflt: number): Float32Array | null {
  if (!t) return new Float32Array(c).fill(dflt);
  const v = f32(backend, t);
  if (!v) return null;
  const n = size(t.shape);
  if (n === c) return v;
  if (n === 1) return new Float32Array(c).fill(v[0]!);
  return null;
}

/** FusedBatchNorm (inference form: given mean / variance) with per-channel (last axis) or scalar parameters. */
export function batchNormBody(addon: NativeAddon): NativeKernelBody {
  return ({ inputs, backend, attrs }) => {
    const { x, mean, variance, offset, scale } = inputs;
    const xv = f32(backend, x);
    if (!x || !xv || x.shape.length === 0 || size(x.shape) === 0) return null;
    const c = x.shape[x.shape.length - 1]!;
    const m = perChannel(backend, mean, c, 0);
    const v = perChannel(backend, variance, c, 1);
    const o = perChannel(backend, offset, c, 0);
    const s = perChannel(backend, scale, c, 1);
    if (!mean || !variance || !m || !v || !o || !s) return null;
    const eps = Number(attrs.varianceEpsilon ?? 0.001);
    const k = new Float32Array(c);
    for (let i = 0; i < c; i++) k[i] = s[i]! / Math.sqrt(v[i]! + eps);
    const out = alloc(size(x.shape));
    addon.batchNorm(xv, m, k, o, out, c);
    return backend.makeTensorInfo(x.shape, 'float32', out);
  };
}

/** Slice of float32 data that is not one contiguous run (contiguous slices stay the cpu kernel's zero-copy views). */
export function sliceBody(addon: NativeAddon): NativeKernelBody {
  return ({ inputs, backend, attrs }) => {
    const { x } = inputs;
    const xv = f32(backend, x);
    if (!x || !xv || x.shape.length === 0 || x.shape.length > 8) return null;
    const [begin, sz] = tf.slice_util.parseSliceParams(x as tf.Tensor, attrs.begin as number | number[], attrs.size as number | number[] | undefined);
    if (!begin || !sz || begin.length !== x.shape.length || sz.length !== x.shape.length || size(sz) === 0) return null;
    if (tf.slice_util.isSliceContinous(x.shape, begin, sz)) return null;
    const out = alloc(size(sz));
    addon.slice(xv, x.shape, out, sz, begin);
    return backend.makeTensorInfo(sz, 'float32', out);
  };
}

/** Tile of float32 data (the batch-norm gradient tiles per-channel vectors to the activation's shape). */
export function tileBody(addon: NativeAddon): NativeKernelBody {
  return ({ inputs, backend, attrs }) => {
    const { x } = inputs;
    const xv = f32(backend, x);
    const reps = attrs.reps as number[] | undefined;
    if (!x || !xv || !reps || x.shape.length === 0 || x.shape.length > 8 || reps.length !== x.shape.length) return null;
    if (size(x.shape) === 0 || reps.some((r) => !Number.isInteger(r) || r < 0)) return null;
    const outShape = x.shape.map((d, i) => d * reps[i]!);
    const out = alloc(size(outShape));
    if (out.length > 0) addon.tile(xv, x.shape, out, outShape);
    return backend.makeTensorInfo(outShape, 'float32', out);
  };
}
