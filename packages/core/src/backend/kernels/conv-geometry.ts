/**
 * Geometry of a 2-D convolution (NHWC), from tfjs's own `computeConv2DInfo`, in the form the
 * gradient kernels need.
 */
import * as tf from '@tensorflow/tfjs';
import { pair } from './util.js';

/** Explicit per-axis [before, after] padding, as tfjs's `ExplicitPadding`. */
export type ExplicitPadding = [[number, number], [number, number], [number, number], [number, number]];

export type PadAttr = 'valid' | 'same' | number | ExplicitPadding;

export interface ConvGeometryArgs {
  /** Forward input shape, NHWC. */
  inShape: [number, number, number, number];
  /** Filter shape [fh, fw, inC, outC] (depthwise: [fh, fw, inC, multiplier]). */
  filterShape: [number, number, number, number];
  /** Forward strides. */
  strides: number | [number, number];
  /** Forward dilations; default 1. */
  dilations?: number | [number, number];
  /** Forward padding. */
  pad: PadAttr;
  /** Forward rounding mode; default tfjs's. */
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  /** Whether the forward op is a depthwise convolution; default false. */
  depthwise?: boolean;
}

export interface ConvGeometry {
  inH: number;
  inW: number;
  outH: number;
  outW: number;
  fh: number;
  fw: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  top: number;
  left: number;
}

export function convGeometry(a: ConvGeometryArgs): ConvGeometry {
  const info = tf.backend_util.computeConv2DInfo(
    a.inShape,
    a.filterShape,
    a.strides,
    a.dilations ?? 1,
    a.pad,
    a.dimRoundingMode,
    a.depthwise ?? false,
    'channelsLast',
  );
  const [dh, dw] = pair(a.dilations);
  return {
    inH: info.inHeight,
    inW: info.inWidth,
    outH: info.outHeight,
    outW: info.outWidth,
    fh: info.filterHeight,
    fw: info.filterWidth,
    sh: info.strideHeight,
    sw: info.strideWidth,
    dh,
    dw,
    top: info.padInfo.top,
    left: info.padInfo.left,
  };
}

/** Explicit padding given in NCHW order → NHWC order (other pad forms are layout-free). */
export function padToNhwc(pad: PadAttr, dataFormat: string | undefined): PadAttr {
  if (dataFormat !== 'NCHW' || !Array.isArray(pad)) return pad;
  const p = pad as ExplicitPadding;
  return [p[0], p[2], p[3], p[1]];
}
