import * as tf from '@tensorflow/tfjs';
import type { TensorInfo } from '@tensorflow/tfjs';
import type { NativeAddon } from '../addon.js';
import { alloc, f32, size, type NativeKernelBody } from './util.js';

const BINARY_OPS = { Add: 0, Sub: 1, Multiply: 2, RealDiv: 3 } as const;
export type BinaryKernel = keyof typeof BINARY_OPS;

/** How b broadcasts against a: [mode, inner] for the addon, or null for patterns left to the cpu kernel. */
function broadcastMode(a: number[], b: number[]): { mode: number; inner: number; outShape: number[] } | null {
  const same = a.length === b.length && a.every((d, i) => d === b[i]);
  if (same) return { mode: 0, inner: 1, outShape: a };
  const sa = size(a);
  const sb = size(b);
  // Suffix broadcast: the smaller operand's shape (leading 1s dropped) is a suffix of the larger one's.
  const suffix = (big: number[], small: number[]) => {
    let s = small;
    while (s.length > 0 && s[0] === 1) s = s.slice(1);
    if (s.length > big.length) return false;
    const tail = big.slice(big.length - s.length);
    return tail.every((d, i) => d === s[i]) && small.length <= big.length;
  };
  if (sb === 1 && b.length <= a.length) return { mode: 3, inner: 1, outShape: a };
  if (sa === 1 && a.length <= b.length) return { mode: 4, inner: 1, outShape: b };
  if (suffix(a, b)) return { mode: 1, inner: sb, outShape: a };
  if (suffix(b, a)) return { mode: 2, inner: sa, outShape: b };
  return null;
}

export function binaryBody(addon: NativeAddon, kernel: BinaryKernel): NativeKernelBody {
  const op = BINARY_OPS[kernel];
  return ({ inputs, backend }) => {
    const { a, b } = inputs;
    const av = f32(backend, a);
    const bv = f32(backend, b);
    if (!a || !b || !av || !bv) return null;
    const m = broadcastMode(a.shape, b.shape);
    if (!m) return strided(addon, op, backend, a, av, b, bv);
    const n = size(m.outShape);
    if (n === 0) return null;
    const out = alloc(n);
    addon.binary(op, av, bv, out, m.mode, m.inner);
    return backend.makeTensorInfo(m.outShape, 'float32', out);
  };
}

/** Any other numpy-style broadcast (e.g. [8,1,1,512] * [8,9,9,512], the GAP gradient). */
function strided(
  addon: NativeAddon,
  op: number,
  backend: Parameters<NativeKernelBody>[0]['backend'],
  a: TensorInfo,
  av: Float32Array,
  b: TensorInfo,
  bv: Float32Array,
): TensorInfo | null {
  let outShape: number[];
  try {
    outShape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
  } catch {
    return null;
  }
  const rank = outShape.length;
  if (rank === 0 || rank > 8 || size(outShape) === 0) return null;
  const stridesFor = (shape: number[]) => {
    const padded = [...new Array<number>(rank - shape.length).fill(1), ...shape];
    const st = new Array<number>(rank).fill(0);
    let acc = 1;
    for (let d = rank - 1; d >= 0; d--) {
      st[d] = padded[d] === 1 ? 0 : acc;
      acc *= padded[d]!;
    }
    return st;
  };
  const out = alloc(size(outShape));
  addon.binaryStrided(op, av, bv, out, outShape, stridesFor(a.shape), stridesFor(b.shape));
  return backend.makeTensorInfo(outShape, 'float32', out);
}

export function unaryBody(addon: NativeAddon, kernel: 'Relu' | 'Step'): NativeKernelBody {
  const op = kernel === 'Relu' ? 0 : 1;
  return ({ inputs, backend, attrs }) => {
    const { x } = inputs;
    const xv = f32(backend, x);
    if (!x || !xv || size(x.shape) === 0) return null;
    const out = alloc(size(x.shape));
    addon.unary(op, xv, out, kernel === 'Step' ? Number((attrs.alpha as number | undefined) ?? 0) : 0);
    return backend.makeTensorInfo(x.shape, 'float32', out);
  };
}

/** Sum / Mean over a contiguous run of axes (bias gradients, global average pooling). */
export function reduceBody(addon: NativeAddon, kernel: 'Sum' | 'Mean'): NativeKernelBody {
  return ({ inputs, backend, attrs }) => {
    const { x } = inputs;
    const xv = f32(backend, x);
    if (!x || !xv || x.shape.length === 0) return null;
    const axes = [...tf.util.parseAxisParam(attrs.axis as number | number[], x.shape)].sort((p, q) => p - q);
    if (axes.length === 0) return null;
    const lo = axes[0]!;
    const hi = axes[axes.length - 1]!;
    if (hi - lo + 1 !== axes.length) return null;
    const outer = size(x.shape.slice(0, lo));
    const red = size(x.shape.slice(lo, hi + 1));
    const inner = size(x.shape.slice(hi + 1));
    if (red === 0 || outer * inner === 0) return null;
    const keep = Boolean(attrs.keepDims);
    const outShape = keep ? x.shape.map((d, i) => (i >= lo && i <= hi ? 1 : d)) : x.shape.filter((_, i) => i < lo || i > hi);
    const out = alloc(outer * inner);
    addon.reduceSum(xv, out, outer, red, inner, kernel === 'Mean' ? 1 / red : 1);
    return backend.makeTensorInfo(outShape, 'float32', out) as TensorInfo;
  };
}

/** ClipByValue (attrs clipValueMin / clipValueMax) and Relu6 (clip to [0, 6]); NaN stays NaN as in tfjs cpu. */
export function clipBody(addon: NativeAddon, kernel: 'ClipByValue' | 'Relu6'): NativeKernelBody {
  return ({ inputs, backend, attrs }) => {
    const { x } = inputs;
    const xv = f32(backend, x);
    if (!x || !xv || size(x.shape) === 0) return null;
    const lo = kernel === 'Relu6' ? 0 : Number(attrs.clipValueMin);
    const hi = kernel === 'Relu6' ? 6 : Number(attrs.clipValueMax);
    if (Number.isNaN(lo) || Number.isNaN(hi)) return null;
    const out = alloc(size(x.shape));
    addon.unary(2, xv, out, lo, hi);
    return backend.makeTensorInfo(x.shape, 'float32', out);
  };
}
