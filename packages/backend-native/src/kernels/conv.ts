import * as tf from '@tensorflow/tfjs';
import type { TensorInfo } from '@tensorflow/tfjs';
import type { NativeAddon } from '../addon.js';
import { alloc, f32, size, type CpuBackendLike, type NativeKernelBody } from './util.js';

type Conv2DInfo = ReturnType<typeof tf.backend_util.computeConv2DInfo>;

interface ConvAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat?: 'NHWC' | 'NCHW';
  dilations?: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

function convInfo(xShape: number[], filterShape: number[], a: ConvAttrs, depthwise = false): Conv2DInfo | null {
  if ((a.dataFormat ?? 'NHWC') !== 'NHWC' || xShape.length !== 4 || filterShape.length !== 4) return null;
  if (depthwise && filterShape[2] !== xShape[3]) return null;
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    a.strides,
    a.dilations ?? 1,
    a.pad,
    a.dimRoundingMode,
    depthwise,
    'channelsLast',
  );
  // oneDNN derives the output size as floor((in + pads - effectiveFilter) / stride) + 1: it must agree with tfjs.
  const p = info.padInfo;
  const oh = Math.floor((info.inHeight + p.top + p.bottom - info.effectiveFilterHeight) / info.strideHeight) + 1;
  const ow = Math.floor((info.inWidth + p.left + p.right - info.effectiveFilterWidth) / info.strideWidth) + 1;
  if (oh !== info.outHeight || ow !== info.outWidth || p.top < 0 || p.bottom < 0 || p.left < 0 || p.right < 0) return null;
  if (info.outHeight <= 0 || info.outWidth <= 0 || info.batchSize === 0 || info.inChannels === 0 || info.outChannels === 0) return null;
  return info;
}

/** The addon's conv array; a 9th element 1 makes it a depthwise (grouped) convolution. */
function convArgs(c: Conv2DInfo, depthwise = false): number[] {
  const p = c.padInfo;
  const a = [c.strideHeight, c.strideWidth, p.top, p.left, p.bottom, p.right, c.dilationHeight, c.dilationWidth];
  return depthwise ? [...a, 1] : a;
}

/** Fused activations the addon applies as a oneDNN post-op: 0 linear, 1 relu, 2 relu6; null = not covered. */
function activationCode(activation: string | undefined): 0 | 1 | 2 | null {
  switch (activation ?? 'linear') {
    case 'linear':
      return 0;
    case 'relu':
      return 1;
    case 'relu6':
      return 2;
    default:
      return null;
  }
}

/**
 * A number per tfjs tensor data, passed with each filter so that the addon can keep the filter's reordered copy
 * (blocked layout, bf16) for the next call on the same filter: the same number means the same values, because tfjs
 * tensors are immutable (the addon also compares sampled values before it reuses a copy).
 */
const filterIds = new WeakMap<object, number>();
let lastFilterId = 0;
function filterId(dataId: object): number {
  let id = filterIds.get(dataId);
  if (id === undefined) {
    id = ++lastFilterId;
    filterIds.set(dataId, id);
  }
  return id;
}

function output(backend: CpuBackendLike, shape: number[], values: Float32Array): TensorInfo {
  return backend.makeTensorInfo(shape, 'float32', values);
}

/**
 * Conv2D and FusedConv2D (with `depthwise`: DepthwiseConv2dNative, any channel multiplier, and FusedDepthwiseConv2D,
 * run as a oneDNN grouped convolution): no bias or a per-channel bias, linear, relu or relu6 activation. The plain
 * kernels are the fused ones without bias and activation.
 */
export function conv2dBody(addon: NativeAddon, depthwise = false): NativeKernelBody {
  return ({ inputs, backend, attrs }) => {
    const { x, filter, bias, preluActivationWeights } = inputs;
    const act = activationCode(attrs.activation as string | undefined);
    if (preluActivationWeights || act === null) return null;
    const xv = f32(backend, x);
    const wv = f32(backend, filter);
    if (!x || !filter || !xv || !wv) return null;
    const c = convInfo(x.shape, filter.shape, attrs as unknown as ConvAttrs, depthwise);
    if (!c) return null;
    let bv: Float32Array | null = null;
    if (bias) {
      const outChannels = c.outChannels;
      if (size(bias.shape) !== outChannels || bias.shape.length > 1 || (bias.shape.length === 0 && outChannels !== 1)) return null;
      bv = f32(backend, bias);
      if (!bv) return null;
    }
    const y = alloc(size(c.outShape));
    addon.conv2d(xv, x.shape, wv, filter.shape, bv, y, c.outShape, convArgs(c, depthwise), act, filterId(filter.dataId));
    return output(backend, c.outShape, y);
  };
}

export function conv2dBackpropInputBody(addon: NativeAddon, depthwise = false): NativeKernelBody {
  return ({ inputs, backend, attrs }) => {
    const { dy, filter } = inputs;
    const inputShape = attrs.inputShape as number[];
    const dyv = f32(backend, dy);
    const wv = f32(backend, filter);
    if (!dy || !filter || !dyv || !wv) return null;
    const c = convInfo(inputShape, filter.shape, attrs as unknown as ConvAttrs, depthwise);
    if (!c || c.outShape.some((d, i) => d !== dy.shape[i])) return null;
    const dx = alloc(size(inputShape));
    addon.conv2dBackpropInput(dyv, dy.shape, wv, filter.shape, dx, inputShape, convArgs(c, depthwise), filterId(filter.dataId));
    return output(backend, inputShape, dx);
  };
}

export function conv2dBackpropFilterBody(addon: NativeAddon, depthwise = false): NativeKernelBody {
  return ({ inputs, backend, attrs }) => {
    const { x, dy } = inputs;
    const filterShape = attrs.filterShape as number[];
    const xv = f32(backend, x);
    const dyv = f32(backend, dy);
    if (!x || !dy || !xv || !dyv) return null;
    const c = convInfo(x.shape, filterShape, attrs as unknown as ConvAttrs, depthwise);
    if (!c || c.outShape.some((d, i) => d !== dy.shape[i])) return null;
    const dw = alloc(size(filterShape));
    addon.conv2dBackpropFilter(xv, x.shape, dyv, dy.shape, dw, filterShape, convArgs(c, depthwise));
    return output(backend, filterShape, dw);
  };
}
