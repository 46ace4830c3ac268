/**
 * DepthwiseConv2dNativeBackpropInput / ...BackpropFilter for the wasm backend, which has neither.
 * Both are rewritten as wasm's own DepthwiseConv2dNative (XNNPACK) plus pad/transpose/reshape.
 *
 * Channel layout (tfjs/TF): filter [fh, fw, C, M], output channel k = c·M + m.
 */
import * as tf from '@tensorflow/tfjs';
import { convGeometry } from './conv-geometry.js';
import { asTensor, flipSpatial, padOrCrop4d, zeroDilate4d, type KernelInput } from './util.js';

export interface DepthwiseBackpropInputArgs {
  /** Gradient of the forward output [N, Ho, Wo, C·M]. */
  dy: KernelInput;
  /** Forward filter [fh, fw, C, M]. */
  filter: KernelInput;
  /** Kernel attributes, as tfjs passes them. */
  attrs: tf.DepthwiseConv2dNativeBackpropInputAttrs;
}

/**
 * dx[n, y, x, c] = Σ_{a,b,m} D[n, y + top − a·dh, x + left − b·dw, c·M + m] · W[a, b, c, m]
 * (D = dy with stride − 1 zeros inserted): a stride-1 depthwise correlation of the padded D with the
 * spatially flipped filter seen as [fh, fw, C·M, 1], then a sum over m. Must run inside `tf.tidy`.
 */
export function depthwiseBackpropInputOps({ dy: dyInfo, filter: wInfo, attrs }: DepthwiseBackpropInputArgs): tf.Tensor4D {
  const dy = asTensor<tf.Rank.R4>(dyInfo);
  const w = asTensor<tf.Rank.R4>(wInfo);
  const [fh, fw, c, m] = w.shape;
  const [n] = attrs.inputShape;
  const g = convGeometry({
    inShape: attrs.inputShape,
    filterShape: [fh, fw, c, m],
    strides: attrs.strides,
    dilations: attrs.dilations,
    pad: attrs.pad,
    dimRoundingMode: attrs.dimRoundingMode,
    depthwise: true,
  });
  const effH = (g.fh - 1) * g.dh + 1;
  const effW = (g.fw - 1) * g.dw + 1;
  const d = zeroDilate4d(dy, g.sh, g.sw);
  const [, dH = 0, dW = 0] = d.shape;
  const padTop = effH - 1 - g.top;
  const padLeft = effW - 1 - g.left;
  const dp = padOrCrop4d(d, padTop, g.inH + effH - 1 - padTop - dH, padLeft, g.inW + effW - 1 - padLeft - dW);
  const wf = tf.reshape(flipSpatial(w), [fh, fw, c * m, 1]) as tf.Tensor4D;
  const out = tf.depthwiseConv2d(dp, wf, 1, 'valid', 'NHWC', [g.dh, g.dw]); // [N, H, W, C·M]
  if (m === 1) return out;
  return tf.sum(tf.reshape(out, [n, g.inH, g.inW, c, m]), 4);
}

export interface DepthwiseBackpropFilterArgs {
  /** Forward input [N, H, W, C]. */
  x: KernelInput;
  /** Gradient of the forward output [N, Ho, Wo, C·M]. */
  dy: KernelInput;
  /** Kernel attributes, as tfjs passes them. */
  attrs: tf.DepthwiseConv2dNativeBackpropFilterAttrs;
}

/**
 * dW[a, b, c, m] = Σ_{n,i,j} x[n, i·sh + a·dh − top, j·sw + b·dw − left, c] · dy[n, i, j, c·M + m]
 *
 * With the batch moved into the channels (x as one image [1, H, W, N·C], dy as a per-channel filter
 * [Ho, Wo, N·C, M]) this is one depthwise convolution dilated by the forward stride, giving
 * [1, fh, fw, N·C·M]; a sum over n finishes it. The batch goes in front of the channels (n·C + c), so
 * the transposes move whole rows of C values. Must run inside `tf.tidy`.
 */
export function depthwiseBackpropFilterOps({ x: xInfo, dy: dyInfo, attrs }: DepthwiseBackpropFilterArgs): tf.Tensor4D {
  const x = asTensor<tf.Rank.R4>(xInfo);
  const dy = asTensor<tf.Rank.R4>(dyInfo);
  const [fh, fw, c, m] = attrs.filterShape;
  const [n, h, w] = x.shape;
  const g = convGeometry({
    inShape: x.shape as [number, number, number, number],
    filterShape: attrs.filterShape,
    strides: attrs.strides,
    dilations: attrs.dilations,
    pad: attrs.pad,
    dimRoundingMode: attrs.dimRoundingMode,
    depthwise: true,
  });
  const needH = (g.outH - 1) * g.sh + (fh - 1) * g.dh + 1;
  const needW = (g.outW - 1) * g.sw + (fw - 1) * g.dw + 1;
  const xs = (n === 1 ? x : tf.reshape(tf.transpose(x, [1, 2, 0, 3]), [1, h, w, n * c])) as tf.Tensor4D;
  const xp = padOrCrop4d(xs, g.top, needH - h - g.top, g.left, needW - w - g.left);
  const dyT = n === 1 ? dy : tf.transpose(dy, [1, 2, 0, 3]); // [Ho, Wo, N, C·M]
  const f = tf.reshape(dyT, [g.outH, g.outW, n * c, m]) as tf.Tensor4D;
  const dilations: [number, number] = [g.outH > 1 ? g.sh : 1, g.outW > 1 ? g.sw : 1];
  const strides: [number, number] = [fh > 1 ? g.dh : 1, fw > 1 ? g.dw : 1];
  const out = tf.depthwiseConv2d(xp, f, strides, 'valid', 'NHWC', dilations); // [1, fh, fw, N·C·M]
  if (n === 1) return tf.reshape(out, [fh, fw, c, m]);
  return tf.sum(tf.reshape(out, [fh * fw, n, c * m]), 1).reshape([fh, fw, c, m]);
}

/** The tfjs kernel function for DepthwiseConv2dNativeBackpropInput on wasm. */
export const depthwiseBackpropInputKernel: tf.KernelFunc = ({ inputs, attrs }) => {
  const { dy, filter } = inputs as unknown as { dy: KernelInput; filter: KernelInput };
  return tf.tidy(() => depthwiseBackpropInputOps({ dy, filter, attrs: attrs as unknown as tf.DepthwiseConv2dNativeBackpropInputAttrs }));
};

/** The tfjs kernel function for DepthwiseConv2dNativeBackpropFilter on wasm. */
export const depthwiseBackpropFilterKernel: tf.KernelFunc = ({ inputs, attrs }) => {
  const { x, dy } = inputs as unknown as { x: KernelInput; dy: KernelInput };
  return tf.tidy(() => depthwiseBackpropFilterOps({ x, dy, attrs: attrs as unknown as tf.DepthwiseConv2dNativeBackpropFilterAttrs }));
};
