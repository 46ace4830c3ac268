import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completeBatchNorm, loadLayersModelWithCompleteBatchNorm } from './complete-batchnorm.js';
import { fileSystemHandler } from './fs-io.js';

let tmp: string;
beforeAll(async () => {
  await tf.setBackend('cpu');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dptrain-bn-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const stats = (seed: number) => ({
  movingMeanInitializer: tf.initializers.randomUniform({ minval: -0.2, maxval: 0.2, seed }),
  movingVarianceInitializer: tf.initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed: seed + 1 }),
  gammaInitializer: tf.initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed: seed + 2 }),
  betaInitializer: tf.initializers.randomUniform({ minval: -0.2, maxval: 0.2, seed: seed + 3 }),
});

/** conv → BN(scale=false) → relu → conv → BN(center=false), as InceptionV3 does (scale=False). */
function model(full: boolean): tf.LayersModel {
  const input = tf.input({ shape: [6, 6, 2], name: 'input_1' });
  let x = tf.layers
    .conv2d({ name: 'conv_a', filters: 3, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) })
    .apply(input) as tf.SymbolicTensor;
  x = tf.layers.batchNormalization({ name: 'bn_a', scale: full, ...stats(10) }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.activation({ name: 'relu_a', activation: 'relu' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers
    .conv2d({ name: 'conv_b', filters: 4, kernelSize: 1, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) })
    .apply(x) as tf.SymbolicTensor;
  x = tf.layers.batchNormalization({ name: 'bn_b', center: full, ...stats(20) }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: x });
}

/** Gradients of sum(model(x)^2) with respect to the model's trainable weights, BatchNorm in inference mode. */
function grads(m: tf.LayersModel, x: tf.Tensor): Record<string, Float32Array> {
  return tf.tidy(() => {
    const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
    const { grads: g } = tf.variableGrads(() => tf.sum(tf.square(m.apply(x, { training: false }) as tf.Tensor)) as tf.Scalar, vars);
    return Object.fromEntries(m.trainableWeights.map((w, i) => [w.originalName, g[vars[i]!.name]!.dataSync() as Float32Array]));
  });
}

describe('BatchNorm layers without scale or offset (InceptionV3 scale=False)', () => {
  it('plain tfjs cannot differentiate them: the tape clones the missing scale (the phase-2 crash)', async () => {
    const dir = path.join(tmp, 'plain');
    const m = model(false);
    await m.save(fileSystemHandler(dir));
    const loaded = await tf.loadLayersModel(fileSystemHandler(dir));
    const x = tf.randomNormal([2, 6, 6, 2], 0, 1, 'float32', 3);
    expect(() => grads(loaded, x)).toThrow(/reading 'dataId'/);
    tf.dispose(x);
    m.dispose();
    loaded.dispose();
  });

  it('loaded with completeBatchNorm: same outputs, constant gamma/beta that never train, and the gradients of the full model', async () => {
    const dir = path.join(tmp, 'completed');
    const m = model(false);
    await m.save(fileSystemHandler(dir));
    const { model: loaded, filled } = await loadLayersModelWithCompleteBatchNorm(fileSystemHandler(dir));
    expect(filled).toEqual(['bn_a/gamma', 'bn_b/beta']);
    const x = tf.randomNormal([2, 6, 6, 2], 0, 1, 'float32', 3);
    const want = m.predict(x) as tf.Tensor;
    const got = loaded.predict(x) as tf.Tensor;
    expect(Array.from(got.dataSync())).toEqual(Array.from(want.dataSync()));
    // trainable flags of layers (set per phase by the replica) never make the filled constants train
    for (const l of loaded.layers) l.trainable = true;
    const names = loaded.trainableWeights.map((w) => w.originalName);
    expect(names).toEqual(m.trainableWeights.map((w) => w.originalName));
    expect(names).not.toContain('bn_a/gamma');
    expect(names).toContain('bn_a/beta');
    // the same model with explicit gamma = 1 / beta = 0 gives the reference gradients
    const full = model(true);
    full.getLayer('conv_a').setWeights(m.getLayer('conv_a').getWeights());
    full.getLayer('conv_b').setWeights(m.getLayer('conv_b').getWeights());
    const [betaA, meanA, varA] = m.getLayer('bn_a').getWeights();
    full.getLayer('bn_a').setWeights([tf.onesLike(betaA!), betaA!, meanA!, varA!]);
    const [gammaB, meanB, varB] = m.getLayer('bn_b').getWeights();
    full.getLayer('bn_b').setWeights([gammaB!, tf.zerosLike(gammaB!), meanB!, varB!]);
    const ref = grads(full, x);
    const g = grads(loaded, x);
    expect(Object.keys(g)).toEqual(names);
    for (const n of names) {
      expect(
        g[n]!.some((v) => v !== 0),
        n,
      ).toBe(true);
      const r = ref[n]!;
      g[n]!.forEach((v, i) => expect(v).toBeCloseTo(r[i]!, 5));
    }
    tf.dispose([x, want, got]);
    for (const mm of [m, loaded, full]) mm.dispose();
  });

  it('also inside a nested model (a Keras application used as a layer)', async () => {
    const dir = path.join(tmp, 'nested');
    const inner = model(false);
    const input = tf.input({ shape: [6, 6, 2], name: 'outer_input' });
    const out = tf.layers.globalAveragePooling2d({ name: 'outer_pool' }).apply(inner.apply(input) as tf.SymbolicTensor) as tf.SymbolicTensor;
    const outer = tf.model({ inputs: input, outputs: out, name: 'outer' });
    await outer.save(fileSystemHandler(dir));
    const { model: loaded, filled } = await loadLayersModelWithCompleteBatchNorm(fileSystemHandler(dir));
    expect(filled).toHaveLength(2);
    for (const l of loaded.layers) l.trainable = true;
    const names = loaded.trainableWeights.map((w) => w.originalName);
    for (const f of filled) expect(names).not.toContain(f);
    const x = tf.randomNormal([2, 6, 6, 2], 0, 1, 'float32', 4);
    const g = grads(loaded, x);
    expect(Object.values(g).every((v) => v.every(Number.isFinite))).toBe(true);
    expect(Array.from((loaded.predict(x) as tf.Tensor).dataSync())).toEqual(Array.from((outer.predict(x) as tf.Tensor).dataSync()));
    tf.dispose(x);
    outer.dispose();
    loaded.dispose();
  });

  it('leaves a model whose BatchNorm layers are complete as it is', async () => {
    const dir = path.join(tmp, 'full');
    const m = model(true);
    await m.save(fileSystemHandler(dir));
    const artifacts = await fileSystemHandler(dir).load();
    const out = completeBatchNorm(artifacts);
    expect(out.filled).toEqual([]);
    expect(out.artifacts).toBe(artifacts);
    m.dispose();
  });
});
