import * as tf from '@tensorflow/tfjs';

/** Channel widths of the five VGG16 blocks. */
export const VGG16_WIDTHS: readonly number[] = [64, 128, 256, 512, 512];
/** Convolutions per block in VGG16. */
export const VGG16_CONVS: readonly number[] = [2, 2, 3, 3, 3];
/** Default tiny-vgg widths (tests and demo). */
export const TINY_VGG_WIDTHS: readonly number[] = [8, 16, 32, 32, 32];
/** The file name Keras uses for VGG16 ImageNet weights without the top. */
export const VGG16_NOTOP_H5 = 'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5';

export interface BuildVggOptions {
  /** Input [height, width]. Default [150, 150]. */
  inputSize?: [number, number];
  /** Channel widths of the 5 blocks. Default VGG16's [64, 128, 256, 512, 512]. */
  widths?: readonly number[];
  /** Seed of the (glorot uniform) random initialisation. Default 42. */
  seed?: number;
  /** Model name. Default 'vgg16'. */
  name?: string;
}

/**
 * VGG16 without the top, with Keras' layer names: input_1, block1_conv1 … block5_conv3, block1_pool … block5_pool.
 * Convolutions are 3x3 'same' + relu, pools 2x2 stride 2 ('valid', as Keras). Weights are seeded random (He uniform, which keeps activations alive through 13 relu convolutions).
 */
export function buildVgg(options: BuildVggOptions = {}): tf.LayersModel {
  const [h, w] = options.inputSize ?? [150, 150];
  const widths = options.widths ?? VGG16_WIDTHS;
  const seed = options.seed ?? 42;
  const input = tf.input({ shape: [h, w, 3], name: 'input_1' });
  let x: tf.SymbolicTensor = input;
  let k = 0;
  for (let b = 0; b < 5; b++) {
    const filters = widths[b] ?? 0;
    for (let c = 0; c < (VGG16_CONVS[b] ?? 0); c++) {
      x = tf.layers
        .conv2d({
          name: `block${b + 1}_conv${c + 1}`,
          filters,
          kernelSize: 3,
          padding: 'same',
          activation: 'relu',
          kernelInitializer: tf.initializers.heUniform({ seed: seed * 1000 + k++ }),
          biasInitializer: 'zeros',
        })
        .apply(x) as tf.SymbolicTensor;
    }
    x = tf.layers.maxPooling2d({ name: `block${b + 1}_pool`, poolSize: 2, strides: 2 }).apply(x) as tf.SymbolicTensor;
  }
  return tf.model({ inputs: input, outputs: x, name: options.name ?? 'vgg16' });
}
