/**
 * Conv2DBackpropFilter for the wasm backend, which has none.
 *
 * dW[a, b, ci, co] = Σ_{n,i,j} x[n, i·sh + a − top, j·sw + b − left, ci] · dy[n, i, j, co]
 *
 * is itself a convolution once batch and channels trade places: with x as [Cin, H, W, N] (the input
 * channels become the batch, the batch becomes the channels) and dy as a [Ho, Wo, N, Cout] filter, a
 * stride-1 convolution dilated by the forward stride gives [Cin, fh, fw, Cout]. So the whole gradient
 * runs on wasm's own (XNNPACK) Conv2D; only transposes, pad and slice are added around it.
 */
import * as tf from '@tensorflow/tfjs';
import { convGeometry, padToNhwc } from './conv-geometry.js';
import { asTensor, padOrCrop4d, shapeToNhwc, toNhwc, type KernelInput } from './util.js';

export interface Conv2DBackpropFilterArgs {
  /** Forward input, NHWC (or NCHW per `dataFormat`). */
  x: KernelInput;
  /** Gradient of the forward output. */
  dy: KernelInput;
  /** Kernel attributes, as tfjs passes them. */
  attrs: tf.Conv2DBackpropFilterAttrs;
}

/** Computes the filter gradient as a Tensor [fh, fw, Cin, Cout]. Must run inside `tf.tidy`. */
export function conv2dBackpropFilterOps({ x: xInfo, dy: dyInfo, attrs }: Conv2DBackpropFilterArgs): tf.Tensor4D {
  const { dataFormat, filterShape } = attrs;
  const x = toNhwc(asTensor<tf.Rank.R4>(xInfo), dataFormat);
  const dy = toNhwc(asTensor<tf.Rank.R4>(dyInfo), dataFormat);
  const g = convGeometry({
    inShape: shapeToNhwc(xInfo.shape, dataFormat),
    filterShape,
    strides: attrs.strides,
    pad: padToNhwc(attrs.pad, dataFormat),
    dimRoundingMode: attrs.dimRoundingMode,
  });
  // Rows/columns of the (padded) input that the forward pass actually reached.
  const needH = (g.outH - 1) * g.sh + g.fh;
  const needW = (g.outW - 1) * g.sw + g.fw;
  // [N, H, W, Cin] → [Cin, H, W, N], padded/cropped to exactly the reached window.
  const xT = padOrCrop4d(tf.transpose(x, [3, 1, 2, 0]), g.top, needH - g.inH - g.top, g.left, needW - g.inW - g.left);
  // [N, Ho, Wo, Cout] → [Ho, Wo, N, Cout]: a filter with N input and Cout output channels.
  const dyT = tf.transpose(dy, [1, 2, 0, 3]);
  const dilations: [number, number] = [g.outH > 1 ? g.sh : 1, g.outW > 1 ? g.sw : 1];
  const out = tf.conv2d(xT, dyT, 1, 'valid', 'NHWC', dilations); // [Cin, fh, fw, Cout]
  return tf.transpose(out, [1, 2, 0, 3]);
}

/** The tfjs kernel function (registered for 'wasm' by `registerWasmTrainingKernels`). */
export const conv2dBackpropFilterKernel: tf.KernelFunc = ({ inputs, attrs }) => {
  const { x, dy } = inputs as unknown as { x: KernelInput; dy: KernelInput };
  return tf.tidy(() => conv2dBackpropFilterOps({ x, dy, attrs: attrs as unknown as tf.Conv2DBackpropFilterAttrs }));
};
