import * as tf from '@tensorflow/tfjs';

// Test helper (not exported by the barrel): small random-weight tfjs layers models in the shapes of the Keras
// applications, with Keras' layer names, to check that any such backbone trains through both phases.

/** Shapes of the Keras applications this module builds. */
export const KERAS_SHAPES = ['inception_v3', 'resnet50', 'densenet121', 'xception', 'efficientnet_b0', 'mobilenet_v3'] as const;
export type KerasShape = (typeof KERAS_SHAPES)[number];

export interface KerasShapeOptions {
  /** Input height and width. Default 32. */
  size?: number;
  /** Seed of every initializer (each layer gets its own stream). Default 1. */
  seed?: number;
}

type T = tf.SymbolicTensor;

/** Builds layers with seeded initializers and random BatchNorm statistics (so inference-mode BN is not the identity). */
class Builder {
  private n: number;
  constructor(seed: number) {
    this.n = seed * 1000;
  }
  private init() {
    return tf.initializers.glorotUniform({ seed: this.n++ });
  }
  private small(lo: number, hi: number) {
    return tf.initializers.randomUniform({ minval: lo, maxval: hi, seed: this.n++ });
  }
  conv(
    x: T,
    name: string,
    filters: number,
    kernel: number | [number, number],
    o: { strides?: number; padding?: 'same' | 'valid'; bias?: boolean; activation?: string } = {},
  ): T {
    return tf.layers
      .conv2d({
        name,
        filters,
        kernelSize: kernel,
        strides: o.strides ?? 1,
        padding: o.padding ?? 'same',
        useBias: o.bias ?? true,
        activation: (o.activation ?? 'linear') as 'linear',
        kernelInitializer: this.init(),
        biasInitializer: this.small(-0.1, 0.1),
      })
      .apply(x) as T;
  }
  depthwise(x: T, name: string, kernel: number, strides = 1): T {
    return tf.layers.depthwiseConv2d({ name, kernelSize: kernel, strides, padding: 'same', useBias: false, depthwiseInitializer: this.init() }).apply(x) as T;
  }
  separable(x: T, name: string, filters: number): T {
    return tf.layers
      .separableConv2d({ name, filters, kernelSize: 3, padding: 'same', useBias: false, depthwiseInitializer: this.init(), pointwiseInitializer: this.init() })
      .apply(x) as T;
  }
  bn(x: T, name: string, o: { scale?: boolean } = {}): T {
    return tf.layers
      .batchNormalization({
        name,
        scale: o.scale ?? true,
        epsilon: 1e-3,
        gammaInitializer: this.small(0.8, 1.2),
        betaInitializer: this.small(-0.1, 0.1),
        movingMeanInitializer: this.small(-0.1, 0.1),
        movingVarianceInitializer: this.small(0.5, 1.5),
      })
      .apply(x) as T;
  }
  act(x: T, name: string, activation: string): T {
    return tf.layers.activation({ name, activation: activation as 'relu' }).apply(x) as T;
  }
  dense(x: T, name: string, units: number, activation: string): T {
    return tf.layers
      .dense({ name, units, activation: activation as 'relu', kernelInitializer: this.init(), biasInitializer: this.small(-0.1, 0.1) })
      .apply(x) as T;
  }
}

const concat = (xs: T[], name: string) => tf.layers.concatenate({ name, axis: -1 }).apply(xs) as T;
const add = (xs: T[], name: string) => tf.layers.add({ name }).apply(xs) as T;
const multiply = (xs: T[], name: string) => tf.layers.multiply({ name }).apply(xs) as T;
const avgPool = (x: T, name: string, size: number, strides: number, padding: 'same' | 'valid') =>
  tf.layers.averagePooling2d({ name, poolSize: size, strides, padding }).apply(x) as T;
const maxPool = (x: T, name: string, size: number, strides: number, padding: 'same' | 'valid') =>
  tf.layers.maxPooling2d({ name, poolSize: size, strides, padding }).apply(x) as T;
const channels = (x: T) => x.shape[x.shape.length - 1] as number;

/** InceptionV3: conv + BatchNorm(scale=False) + relu units, Concatenate blocks with pooling inside the branches, nested concats. */
function inceptionV3(b: Builder, x: T): T {
  let k = 0;
  const cbn = (t: T, filters: number, kernel: number | [number, number], strides = 1, padding: 'same' | 'valid' = 'same') => {
    k++;
    const c = b.conv(t, `conv2d_${k}`, filters, kernel, { strides, padding, bias: false });
    return b.act(b.bn(c, `batch_normalization_${k}`, { scale: false }), `activation_${k}`, 'relu');
  };
  x = cbn(x, 8, 3, 2, 'valid');
  x = cbn(x, 8, 3, 1, 'valid');
  x = maxPool(x, 'max_pooling2d_1', 3, 2, 'valid');
  // mixed0, mixed1: 1x1 | 1x1→5x5 | 1x1→3x3→3x3 | avg pool→1x1
  for (const m of [0, 1]) {
    const b1 = cbn(x, 4, 1);
    const b5 = cbn(cbn(x, 3, 1), 4, 5);
    const b3 = cbn(cbn(cbn(x, 4, 1), 6, 3), 6, 3);
    const bp = cbn(avgPool(x, `average_pooling2d_${m + 1}`, 3, 1, 'same'), 2, 1);
    x = concat([b1, b5, b3, bp], `mixed${m}`);
  }
  // mixed2: reduction, with max pooling as a branch
  {
    const b3 = cbn(x, 8, 3, 2, 'valid');
    const bd = cbn(cbn(cbn(x, 4, 1), 6, 3), 6, 3, 2, 'valid');
    const bp = maxPool(x, 'max_pooling2d_2', 3, 2, 'valid');
    x = concat([b3, bd, bp], 'mixed2');
  }
  // mixed3: factorized 1x3 / 3x1
  {
    const b1 = cbn(x, 6, 1);
    const b7 = cbn(cbn(cbn(x, 4, 1), 4, [1, 3]), 6, [3, 1]);
    const bp = cbn(avgPool(x, 'average_pooling2d_3', 3, 1, 'same'), 6, 1);
    x = concat([b1, b7, bp], 'mixed3');
  }
  // mixed4, mixed5: branches that split into 1x3 and 3x1 and concatenate inside the block (mixed9_0 in Keras)
  for (const m of [4, 5]) {
    const b1 = cbn(x, 8, 1);
    const s = cbn(x, 6, 1);
    const b3 = concat([cbn(s, 6, [1, 3]), cbn(s, 6, [3, 1])], `mixed${m}_0`);
    const d = cbn(cbn(x, 6, 1), 6, 3);
    const bd = concat([cbn(d, 6, [1, 3]), cbn(d, 6, [3, 1])], `concatenate_${m - 3}`);
    const bp = cbn(avgPool(x, `average_pooling2d_${m}`, 3, 1, 'same'), 4, 1);
    x = concat([b1, b3, bd, bp], `mixed${m}`);
  }
  return x;
}

/** ResNet50: bottleneck blocks with Add shortcuts (a conv shortcut in each stage's first block). */
function resnet50(b: Builder, x: T): T {
  x = tf.layers.zeroPadding2d({ name: 'conv1_pad', padding: 3 }).apply(x) as T;
  x = b.conv(x, 'conv1_conv', 8, 7, { strides: 2, padding: 'valid' });
  x = b.act(b.bn(x, 'conv1_bn'), 'conv1_relu', 'relu');
  x = tf.layers.zeroPadding2d({ name: 'pool1_pad', padding: 1 }).apply(x) as T;
  x = maxPool(x, 'pool1_pool', 3, 2, 'valid');
  const stages: [number, number, number][] = [
    [2, 4, 1],
    [3, 6, 2],
    [4, 8, 2],
  ];
  for (const [stage, filters, stride] of stages) {
    for (const blk of [1, 2]) {
      const p = `conv${stage}_block${blk}`;
      const s = blk === 1 ? stride : 1;
      const shortcut = blk === 1 ? b.bn(b.conv(x, `${p}_0_conv`, 4 * filters, 1, { strides: s }), `${p}_0_bn`) : x;
      let y = b.act(b.bn(b.conv(x, `${p}_1_conv`, filters, 1, { strides: s }), `${p}_1_bn`), `${p}_1_relu`, 'relu');
      y = b.act(b.bn(b.conv(y, `${p}_2_conv`, filters, 3), `${p}_2_bn`), `${p}_2_relu`, 'relu');
      y = b.bn(b.conv(y, `${p}_3_conv`, 4 * filters, 1), `${p}_3_bn`);
      x = b.act(add([shortcut, y], `${p}_add`), `${p}_out`, 'relu');
    }
  }
  return x;
}

/** DenseNet121: dense blocks (each layer's output concatenated to its input), transitions with average pooling. */
function densenet121(b: Builder, x: T): T {
  x = tf.layers.zeroPadding2d({ name: 'zero_padding2d', padding: 3 }).apply(x) as T;
  x = b.conv(x, 'conv1_conv', 8, 7, { strides: 2, padding: 'valid', bias: false });
  x = b.act(b.bn(x, 'conv1_bn'), 'conv1_relu', 'relu');
  x = tf.layers.zeroPadding2d({ name: 'zero_padding2d_1', padding: 1 }).apply(x) as T;
  x = maxPool(x, 'pool1', 3, 2, 'valid');
  const growth = 4;
  for (const stage of [2, 3, 4]) {
    for (let blk = 1; blk <= 3; blk++) {
      const p = `conv${stage}_block${blk}`;
      let y = b.act(b.bn(x, `${p}_0_bn`), `${p}_0_relu`, 'relu');
      y = b.conv(y, `${p}_1_conv`, 4 * growth, 1, { bias: false });
      y = b.act(b.bn(y, `${p}_1_bn`), `${p}_1_relu`, 'relu');
      y = b.conv(y, `${p}_2_conv`, growth, 3, { bias: false });
      x = concat([x, y], `${p}_concat`);
    }
    if (stage < 4) {
      const p = `pool${stage}`;
      x = b.act(b.bn(x, `${p}_bn`), `${p}_relu`, 'relu');
      x = b.conv(x, `${p}_conv`, Math.floor(channels(x) / 2), 1, { bias: false });
      x = avgPool(x, `${p}_pool`, 2, 2, 'valid');
    }
  }
  return b.act(b.bn(x, 'bn'), 'relu', 'relu');
}

/** Xception: separable convolutions, conv shortcuts around max-pooled blocks, identity shortcuts in the middle flow. */
function xception(b: Builder, x: T): T {
  x = b.act(b.bn(b.conv(x, 'block1_conv1', 8, 3, { strides: 2, padding: 'valid', bias: false }), 'block1_conv1_bn'), 'block1_conv1_act', 'relu');
  x = b.act(b.bn(b.conv(x, 'block1_conv2', 8, 3, { padding: 'valid', bias: false }), 'block1_conv2_bn'), 'block1_conv2_act', 'relu');
  let r = 0;
  const residual = (t: T, filters: number) => {
    r++;
    const suffix = r === 1 ? '' : `_${r - 1}`;
    return b.bn(b.conv(t, `conv2d${suffix}`, filters, 1, { strides: 2, bias: false }), `batch_normalization${suffix}`);
  };
  // entry flow: blocks 2-3
  for (const [blk, filters, firstAct] of [
    [2, 12, false],
    [3, 16, true],
  ] as const) {
    const res = residual(x, filters);
    let y = firstAct ? b.act(x, `block${blk}_sepconv1_act`, 'relu') : x;
    y = b.bn(b.separable(y, `block${blk}_sepconv1`, filters), `block${blk}_sepconv1_bn`);
    y = b.act(y, `block${blk}_sepconv2_act`, 'relu');
    y = b.bn(b.separable(y, `block${blk}_sepconv2`, filters), `block${blk}_sepconv2_bn`);
    y = maxPool(y, `block${blk}_pool`, 3, 2, 'same');
    x = add([y, res], `add${r === 1 ? '' : `_${r - 1}`}`);
  }
  // middle flow: blocks 4-5, identity shortcuts
  for (const blk of [4, 5]) {
    let y = x;
    for (const i of [1, 2, 3]) {
      y = b.act(y, `block${blk}_sepconv${i}_act`, 'relu');
      y = b.bn(b.separable(y, `block${blk}_sepconv${i}`, 16), `block${blk}_sepconv${i}_bn`);
    }
    x = add([y, x], `add_${blk - 2}`);
  }
  // exit flow: block 6 (conv shortcut) and block 7
  {
    const res = residual(x, 24);
    let y = b.act(x, 'block6_sepconv1_act', 'relu');
    y = b.bn(b.separable(y, 'block6_sepconv1', 16), 'block6_sepconv1_bn');
    y = b.act(y, 'block6_sepconv2_act', 'relu');
    y = b.bn(b.separable(y, 'block6_sepconv2', 24), 'block6_sepconv2_bn');
    y = maxPool(y, 'block6_pool', 3, 2, 'same');
    x = add([y, res], 'add_4');
  }
  x = b.act(b.bn(b.separable(x, 'block7_sepconv1', 32), 'block7_sepconv1_bn'), 'block7_sepconv1_act', 'relu');
  return b.act(b.bn(b.separable(x, 'block7_sepconv2', 40), 'block7_sepconv2_bn'), 'block7_sepconv2_act', 'relu');
}

/** Squeeze-and-excitation: GlobalAveragePooling → Dense → Dense → Reshape → Multiply with the block's activations. */
function squeezeExcite(b: Builder, x: T, p: string, reduced: number, act: string, gate: string): T {
  const c = channels(x);
  let s = tf.layers.globalAveragePooling2d({ name: `${p}se_squeeze` }).apply(x) as T;
  s = b.dense(s, `${p}se_reduce`, reduced, act);
  s = b.dense(s, `${p}se_expand`, c, gate);
  s = tf.layers.reshape({ name: `${p}se_reshape`, targetShape: [1, 1, c] }).apply(s) as T;
  return multiply([x, s], `${p}se_excite`);
}

/** EfficientNetB0: rescaling, MBConv blocks with swish, squeeze-and-excitation, dropout + Add on repeated blocks. */
function efficientnetB0(b: Builder, x: T): T {
  x = tf.layers.rescaling({ name: 'rescaling', scale: 1 / 255 }).apply(x) as T;
  x = tf.layers
    .zeroPadding2d({
      name: 'stem_conv_pad',
      padding: [
        [0, 1],
        [0, 1],
      ],
    })
    .apply(x) as T;
  x = b.act(b.bn(b.conv(x, 'stem_conv', 8, 3, { strides: 2, padding: 'valid', bias: false }), 'stem_bn'), 'stem_activation', 'swish');
  const blocks: [string, number, number, number, number][] = [
    // name, expand ratio, kernel, stride, filters out
    ['block1a', 1, 3, 1, 8],
    ['block2a', 6, 3, 2, 12],
    ['block2b', 6, 3, 1, 12],
    ['block3a', 6, 5, 2, 16],
    ['block3b', 6, 5, 1, 16],
  ];
  for (const [name, expand, kernel, stride, filters] of blocks) {
    const p = `${name}_`;
    const cin = channels(x);
    let y = x;
    if (expand !== 1) y = b.act(b.bn(b.conv(y, `${p}expand_conv`, cin * expand, 1, { bias: false }), `${p}expand_bn`), `${p}expand_activation`, 'swish');
    y = b.act(b.bn(b.depthwise(y, `${p}dwconv`, kernel, stride), `${p}bn`), `${p}activation`, 'swish');
    y = squeezeExcite(b, y, p, Math.max(1, Math.floor(cin / 4)), 'swish', 'sigmoid');
    y = b.bn(b.conv(y, `${p}project_conv`, filters, 1, { bias: false }), `${p}project_bn`);
    if (stride === 1 && cin === filters) {
      y = tf.layers.dropout({ name: `${p}drop`, rate: 0.2 }).apply(y) as T;
      y = add([y, x], `${p}add`);
    }
    x = y;
  }
  return b.act(b.bn(b.conv(x, 'top_conv', 48, 1, { bias: false }), 'top_bn'), 'top_activation', 'swish');
}

/** MobileNetV3 (small): hard-swish (x · hard_sigmoid(x) by Multiply), SE with hard-sigmoid gates, inverted residuals. */
function mobilenetV3(b: Builder, x: T): T {
  const hardSwish = (t: T, name: string) => multiply([t, b.act(t, `${name}_hard_sigmoid`, 'hardSigmoid')], name);
  x = tf.layers.rescaling({ name: 'rescaling', scale: 1 / 127.5, offset: -1 }).apply(x) as T;
  x = hardSwish(b.bn(b.conv(x, 'conv', 8, 3, { strides: 2, bias: false }), 'conv_batch_norm'), 'conv_hard_swish');
  const blocks: [number, number, number, number, boolean, 'relu' | 'hs'][] = [
    // expansion, filters, kernel, stride, se, activation
    [1, 8, 3, 2, true, 'relu'],
    [4, 12, 3, 2, false, 'relu'],
    [3, 12, 3, 1, false, 'relu'],
    [4, 16, 5, 2, true, 'hs'],
    [6, 16, 5, 1, true, 'hs'],
  ];
  blocks.forEach(([expansion, filters, kernel, stride, se, activation], i) => {
    const p = i === 0 ? 'expanded_conv_' : `expanded_conv_${i}_`;
    const act = (t: T, name: string) => (activation === 'relu' ? b.act(t, name, 'relu') : hardSwish(t, name));
    const cin = channels(x);
    let y = x;
    if (expansion !== 1) y = act(b.bn(b.conv(y, `${p}expand`, cin * expansion, 1, { bias: false }), `${p}expand_batch_norm`), `${p}expand_activation`);
    y = act(b.bn(b.depthwise(y, `${p}depthwise`, kernel, stride), `${p}depthwise_batch_norm`), `${p}depthwise_activation`);
    if (se) y = squeezeExcite(b, y, `${p}squeeze_excite_`, Math.max(1, Math.floor(channels(y) / 4)), 'relu', 'hardSigmoid');
    y = b.bn(b.conv(y, `${p}project`, filters, 1, { bias: false }), `${p}project_batch_norm`);
    if (stride === 1 && cin === filters) y = add([x, y], `${p}add`);
    x = y;
  });
  return hardSwish(b.bn(b.conv(x, 'conv_1', 48, 1, { bias: false }), 'conv_1_batch_norm'), 'activation');
}

const BUILDERS: Record<KerasShape, (b: Builder, x: T) => T> = {
  inception_v3: inceptionV3,
  resnet50,
  densenet121,
  xception,
  efficientnet_b0: efficientnetB0,
  mobilenet_v3: mobilenetV3,
};

/** A small random-weight model in the shape of a Keras application (without top), input [size, size, 3]. */
export function buildKerasShape(shape: KerasShape, options: KerasShapeOptions = {}): tf.LayersModel {
  const size = options.size ?? 32;
  const input = tf.input({ shape: [size, size, 3], name: 'input_1' });
  const out = BUILDERS[shape](new Builder(options.seed ?? 1), input);
  return tf.model({ inputs: input, outputs: out, name: shape });
}
