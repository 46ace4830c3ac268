/**
 * Conv2DBackpropInput for the wasm backend. wasm has one, but it is a plain loop (about 15x slower
 * than its Conv2D on VGG16's block5); this one is a single wasm Conv2D:
 *
 * dx[n, y, x, ci] = Σ_{a,b,co} D[n, y + top − a, x + left − b, co] · W[a, b, ci, co]
 *
 * where D is dy with (stride − 1) zeros inserted between rows/columns. That is a stride-1 'valid'
 * correlation of D (padded by fh − 1 − top before) with W flipped in space and with its channel axes
 * swapped ([fh, fw, Cout, Cin]).
 */
import * as tf from '@tensorflow/tfjs';
import { convGeometry, padToNhwc } from './conv-geometry.js';
import { asTensor, flipSpatial, fromNhwc, padOrCrop4d, shapeToNhwc, toNhwc, zeroDilate4d, type KernelInput } from './util.js';

export interface Conv2DBackpropInputArgs {
  /** Gradient of the forward output. */
  dy: KernelInput;
  /** Forward filter [fh, fw, Cin, Cout]. */
  filter: KernelInput;
  /** Kernel attributes, as tfjs passes them. */
  attrs: tf.Conv2DBackpropInputAttrs;
}

/** Computes the input gradient (in `dataFormat`). Must run inside `tf.tidy`. */
export function conv2dBackpropInputOps({ dy: dyInfo, filter: wInfo, attrs }: Conv2DBackpropInputArgs): tf.Tensor4D {
  const { dataFormat } = attrs;
  const inShape = shapeToNhwc(attrs.inputShape, dataFormat);
  const dy = toNhwc(asTensor<tf.Rank.R4>(dyInfo), dataFormat);
  const w = asTensor<tf.Rank.R4>(wInfo);
  const filterShape = w.shape as [number, number, number, number];
  const g = convGeometry({
    inShape,
    filterShape,
    strides: attrs.strides,
    pad: padToNhwc(attrs.pad, dataFormat),
    dimRoundingMode: attrs.dimRoundingMode,
  });
  const d = zeroDilate4d(dy, g.sh, g.sw); // [N, Ho*sh, Wo*sw, Cout]
  const [, dH = 0, dW = 0] = d.shape;
  const padTop = g.fh - 1 - g.top;
  const padLeft = g.fw - 1 - g.left;
  // The padded D must be inH + fh − 1 rows long for a 'valid' correlation to give inH rows.
  const dp = padOrCrop4d(d, padTop, g.inH + g.fh - 1 - padTop - dH, padLeft, g.inW + g.fw - 1 - padLeft - dW);
  const wT = tf.transpose(flipSpatial(w), [0, 1, 3, 2]); // [fh, fw, Cout, Cin]
  return fromNhwc(tf.conv2d(dp, wT, 1, 'valid'), dataFormat);
}

/** The tfjs kernel function (registered for 'wasm' by `registerWasmTrainingKernels`). */
export const conv2dBackpropInputKernel: tf.KernelFunc = ({ inputs, attrs }) => {
  const { dy, filter } = inputs as unknown as { dy: KernelInput; filter: KernelInput };
  return tf.tidy(() => conv2dBackpropInputOps({ dy, filter, attrs: attrs as unknown as tf.Conv2DBackpropInputAttrs }));
};
