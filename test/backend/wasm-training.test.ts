/**
 * Whole-model gradients on wasm (with the registered training kernels) equal the cpu backend's:
 * a tiny VGG-shaped model and a tiny MobileNetV2-shaped one. Plus: training steps on wasm leak no tensor.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { activateWasm } from '../../packages/core/src/backend/wasm.js';
import { expectClose, mulberry32, randomArray } from './native-backend.testutil.js';

const init = (seed: number) => tf.initializers.glorotUniform({ seed });

function tinyVgg(flatten: boolean): tf.LayersModel {
  const layers: tf.layers.Layer[] = [
    tf.layers.conv2d({
      inputShape: [12, 12, 3],
      filters: 6,
      kernelSize: 3,
      padding: 'same',
      activation: 'relu',
      kernelInitializer: init(1),
      biasInitializer: 'glorotUniform',
    }),
    tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(2) }),
    tf.layers.maxPooling2d({ poolSize: 2, strides: 2 }),
    tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'valid', activation: 'relu', kernelInitializer: init(3) }),
    tf.layers.maxPooling2d({ poolSize: 2, strides: 2 }),
    flatten ? tf.layers.flatten() : tf.layers.globalAveragePooling2d({}),
    tf.layers.dense({ units: 16, activation: 'relu', kernelInitializer: init(4) }),
    tf.layers.dropout({ rate: 0.5, seed: 7 }),
    tf.layers.dense({ units: 4, activation: 'softmax', kernelInitializer: init(5) }),
  ];
  return tf.sequential({ layers });
}

function tinyMobileNet(): tf.LayersModel {
  const inp = tf.input({ shape: [13, 13, 3] });
  const bn = () =>
    tf.layers.batchNormalization({
      movingMeanInitializer: tf.initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed: 9 }),
      movingVarianceInitializer: tf.initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed: 10 }),
    });
  let x = tf.layers
    .zeroPadding2d({
      padding: [
        [0, 1],
        [0, 1],
      ],
    })
    .apply(inp) as tf.SymbolicTensor;
  x = tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'valid', useBias: false, kernelInitializer: init(11) }).apply(x) as tf.SymbolicTensor;
  x = bn().apply(x) as tf.SymbolicTensor;
  x = tf.layers.reLU({ maxValue: 6 }).apply(x) as tf.SymbolicTensor;
  // inverted residual, stride 1, with the add
  let y = tf.layers.conv2d({ filters: 16, kernelSize: 1, useBias: false, kernelInitializer: init(12) }).apply(x) as tf.SymbolicTensor;
  y = tf.layers.reLU({ maxValue: 6 }).apply(bn().apply(y) as tf.SymbolicTensor) as tf.SymbolicTensor;
  y = tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', useBias: false, depthwiseInitializer: init(13) }).apply(y) as tf.SymbolicTensor;
  y = tf.layers.reLU({ maxValue: 6 }).apply(bn().apply(y) as tf.SymbolicTensor) as tf.SymbolicTensor;
  y = tf.layers.conv2d({ filters: 8, kernelSize: 1, useBias: false, kernelInitializer: init(14) }).apply(y) as tf.SymbolicTensor;
  x = tf.layers.add().apply([x, bn().apply(y) as tf.SymbolicTensor]) as tf.SymbolicTensor;
  // stride-2 depthwise with zero padding (MobileNetV2 style) and a channel multiplier
  let z = tf.layers
    .zeroPadding2d({
      padding: [
        [0, 1],
        [0, 1],
      ],
    })
    .apply(x) as tf.SymbolicTensor;
  z = tf.layers
    .depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'valid', depthMultiplier: 2, useBias: false, depthwiseInitializer: init(15) })
    .apply(z) as tf.SymbolicTensor;
  z = tf.layers.reLU({ maxValue: 6 }).apply(z) as tf.SymbolicTensor;
  z = tf.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'same', useBias: true, depthwiseInitializer: init(16) }).apply(z) as tf.SymbolicTensor;
  z = tf.layers.globalAveragePooling2d({}).apply(z) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: init(17) }).apply(z) as tf.SymbolicTensor;
  return tf.model({ inputs: inp, outputs: out });
}

async function gradsOn(backend: string, model: tf.LayersModel, xs: Float32Array, xShape: number[], labels: number[], training: boolean) {
  await tf.setBackend(backend);
  const classes = (model.outputs[0]!.shape[1] as number) ?? 0;
  const x = tf.tensor(xs, xShape);
  const y = tf.oneHot(tf.tensor1d(labels, 'int32'), classes);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training }) as tf.Tensor) as tf.Scalar, vars);
  const out = { loss: (await value.data())[0]!, grads: {} as Record<string, Float32Array> };
  for (const v of vars) out.grads[v.name] = (await grads[v.name]!.data()) as Float32Array;
  tf.dispose([x, y, value, ...Object.values(grads)]);
  return out;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  await activateWasm();
});

describe('whole-model gradients on wasm equal cpu', () => {
  const cases: [string, () => tf.LayersModel, number[], boolean][] = [
    ['tiny VGG, GAP head, dropout on', () => tinyVgg(false), [3, 12, 12, 3], true],
    ['tiny VGG, Flatten head', () => tinyVgg(true), [3, 12, 12, 3], true],
    ['tiny MobileNetV2 (depthwise, batchnorm inference mode, relu6, add, zero padding, stride 2)', tinyMobileNet, [3, 13, 13, 3], false],
    ['tiny MobileNetV2, batchnorm training mode', tinyMobileNet, [3, 13, 13, 3], true],
  ];
  for (const [name, build, shape, training] of cases) {
    it(name, async () => {
      await tf.setBackend('cpu');
      const model = build();
      const xs = randomArray(mulberry32(5), shape);
      const labels = [0, 1, 2];
      const ref = await gradsOn('cpu', model, xs, shape, labels, training);
      const got = await gradsOn('wasm', model, xs, shape, labels, training);
      expect(got.loss).toBeCloseTo(ref.loss, 4);
      const names = Object.keys(ref.grads);
      expect(names.length).toBeGreaterThanOrEqual(5);
      for (const n of names) {
        expect(got.grads[n], n).toBeDefined();
        // a gradient that is all zeros would prove nothing
        expect(
          ref.grads[n]!.some((v) => v !== 0),
          `${n} has a nonzero gradient`,
        ).toBe(true);
        expectClose(got.grads[n]!, ref.grads[n]!, 1e-4);
      }
      model.dispose();
    });
  }
});

describe('training on wasm leaks no tensor', () => {
  it('numTensors after step 2 equals numTensors after step 8 (fit on a batch, Adam)', async () => {
    await tf.setBackend('wasm');
    const model = tinyMobileNet();
    model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
    const x = tf.tensor(randomArray(mulberry32(3), [2, 13, 13, 3]), [2, 13, 13, 3]);
    const y = tf.oneHot(tf.tensor1d([0, 2], 'int32'), 3);
    const counts: number[] = [];
    for (let step = 1; step <= 8; step++) {
      const loss = (await model.trainOnBatch(x, y)) as number;
      expect(Number.isFinite(loss)).toBe(true);
      counts.push(tf.memory().numTensors);
    }
    expect(counts[7]).toBe(counts[1]);
    tf.dispose([x, y]);
    model.dispose();
  });
});
