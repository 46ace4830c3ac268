import * as tf from '@tensorflow/tfjs';
import type { NativeAddon } from '../addon.js';
import { alloc, f32, size, type NativeKernelBody } from './util.js';

interface PoolAttrs {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

function poolInfo(xShape: number[], a: PoolAttrs) {
  if (xShape.length !== 4) return null;
  const info = tf.backend_util.computePool2DInfo(xShape as [number, number, number, number], a.filterSize, a.strides, 1, a.pad, a.dimRoundingMode);
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1 || size(info.outShape) === 0) return null;
  const pool = [info.filterHeight, info.filterWidth, info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left];
  return { outShape: info.outShape, pool };
}

export function maxPoolBody(addon: NativeAddon): NativeKernelBody {
  return ({ inputs, backend, attrs }) => {
    const { x } = inputs;
    const xv = f32(backend, x);
    if (!x || !xv) return null;
    const p = poolInfo(x.shape, attrs as unknown as PoolAttrs);
    if (!p) return null;
    const y = alloc(size(p.outShape));
    addon.maxPool(xv, x.shape, y, p.outShape, p.pool);
    return backend.makeTensorInfo(p.outShape, 'float32', y);
  };
}

export function maxPoolGradBody(addon: NativeAddon): NativeKernelBody {
  return ({ inputs, backend, attrs }) => {
    const { dy, input } = inputs;
    const dyv = f32(backend, dy);
    const xv = f32(backend, input);
    if (!dy || !input || !dyv || !xv) return null;
    const p = poolInfo(input.shape, attrs as unknown as PoolAttrs);
    if (!p || p.outShape.some((d, i) => d !== dy.shape[i])) return null;
    const dx = alloc(size(input.shape));
    addon.maxPoolGrad(dyv, xv, input.shape, dx, p.outShape, p.pool);
    return backend.makeTensorInfo(input.shape, 'float32', dx);
  };
}
