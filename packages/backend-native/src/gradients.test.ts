import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { NATIVE_BACKEND_NAME } from './backend.js';
import { fusedGradientCalls } from './gradients.js';
import { setNativeThreads } from './index.js';
import { nativeOrSkipReason, prng, randomData } from './native-backend.testutil.js';

const skipReason = await nativeOrSkipReason();

/** tfjs's own FusedBatchNorm gradient formula (tfjs-core gradients/FusedBatchNorm_grad.ts), op for op. */
function referenceBatchNormGrads(x: tf.Tensor4D, dy: tf.Tensor4D, mean: tf.Tensor1D, variance: tf.Tensor1D, scale: tf.Tensor1D, eps: number) {
  return tf.tidy(() => {
    const c = mean.shape[0];
    const r = tf.rsqrt(tf.add(variance, tf.scalar(eps)));
    const tiled = tf.tile(tf.reshape(r, [1, 1, 1, c]), [...x.shape.slice(0, 3), 1]);
    const dx = tf.mul(tf.mul(dy, tiled), scale);
    const dScale = tf.sum(tf.mul(dy, tf.mul(tf.sub(x, mean), r)), [0, 1, 2]);
    const dOffset = tf.sum(dy, [0, 1, 2]);
    return [dx, dScale, dOffset].map((t) => t.dataSync() as Float32Array);
  });
}

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

describe.skipIf(skipReason !== null)('fused batch-norm and clip gradients on the native backend', () => {
  afterAll(() => setNativeThreads(2));

  // [N, H, W, C]: one below the 65,536-value threshold where the addon's loops go parallel, two above
  it.each([[[2, 3, 4, 5]], [[8, 7, 7, 160]], [[3, 14, 14, 96]]])(
    'batch norm %j: dx, d(scale) and d(offset) have the bits of tfjs’s formula, on 1 and 2 threads',
    async (shape) => {
      await tf.setBackend(NATIVE_BACKEND_NAME);
      const rand = prng(shape.reduce((a, b) => a * 31 + b, 7));
      const n = shape.reduce((a, b) => a * b, 1);
      const c = shape[3]!;
      const x = tf.tensor4d(randomData(rand, [n]).data, shape as [number, number, number, number]);
      const dy = tf.tensor4d(randomData(rand, [n]).data, shape as [number, number, number, number]);
      const mean = tf.tensor1d(randomData(rand, [c]).data);
      const variance = tf.tensor1d(randomData(rand, [c]).data.map((v) => Math.abs(v) + 0.1));
      const offset = tf.variable(tf.tensor1d(randomData(rand, [c]).data));
      const scale = tf.variable(tf.tensor1d(randomData(rand, [c]).data));
      const eps = 0.001;
      for (const threads of [1, 2]) {
        setNativeThreads(threads);
        const calls = fusedGradientCalls().batchNorm;
        const before = tf.memory().numTensors;
        const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(tf.batchNorm(x, mean, variance, offset, scale, eps), dy)) as tf.Scalar);
        // d/dx through tf.grad (the layer's input), the parameters through variableGrads
        const dx = tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(tf.batchNorm(xi, mean, variance, offset, scale, eps), dy)))(x);
        const [refDx, refScale, refOffset] = referenceBatchNormGrads(x, dy, mean, variance, scale, eps);
        expect(bits(dx.dataSync() as Float32Array)).toEqual(bits(refDx!));
        expect(bits(grads[scale.name]!.dataSync() as Float32Array)).toEqual(bits(refScale!));
        expect(bits(grads[offset.name]!.dataSync() as Float32Array)).toEqual(bits(refOffset!));
        expect(fusedGradientCalls().batchNorm).toBe(calls + 2);
        tf.dispose([value, dx, ...Object.values(grads)]);
        expect(tf.memory().numTensors).toBe(before);
      }
      tf.dispose([x, dy, mean, variance, offset, scale]);
    },
  );

  it('clip gradient: dy inside [lo, hi] (ends included), 0 outside and at NaN, as where(x >= lo && x <= hi, dy, 0)', async () => {
    await tf.setBackend(NATIVE_BACKEND_NAME);
    const rand = prng(11);
    const data = randomData(rand, [70_000]).data.map((v) => v * 8);
    data.set([0, 6, Number.NaN, -0.5, 6.5], 0);
    const x = tf.tensor1d(data);
    const dy = tf.tensor1d(randomData(rand, [data.length]).data);
    const calls = fusedGradientCalls().clip;
    const before = tf.memory().numTensors;
    const g = tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(tf.clipByValue(xi, 0, 6), dy)))(x);
    const ref = tf.tidy(() => tf.where(tf.logicalAnd(tf.greaterEqual(x, 0), tf.lessEqual(x, 6)), dy, tf.zerosLike(dy)).dataSync() as Float32Array);
    const got = g.dataSync() as Float32Array;
    expect(bits(got)).toEqual(bits(ref));
    expect(fusedGradientCalls().clip).toBe(calls + 1);
    expect([got[0], got[1], got[2], got[3], got[4]]).toEqual([dy.dataSync()[0], dy.dataSync()[1], 0, 0, 0]);
    g.dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, dy]);
  });

  it('on another backend the gradients are tfjs’s own (the replacement checks the active backend)', async () => {
    await tf.setBackend('cpu');
    const rand = prng(5);
    const shape: [number, number, number, number] = [2, 3, 3, 4];
    const x = tf.tensor4d(randomData(rand, shape).data, shape);
    const dy = tf.tensor4d(randomData(rand, shape).data, shape);
    const mean = tf.tensor1d(randomData(rand, [4]).data);
    const variance = tf.tensor1d(randomData(rand, [4]).data.map((v) => Math.abs(v) + 0.1));
    const scale = tf.tensor1d(randomData(rand, [4]).data);
    const offset = tf.tensor1d(randomData(rand, [4]).data);
    const calls = fusedGradientCalls();
    const dx = tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(tf.batchNorm(xi, mean, variance, offset, scale, 0.001), dy)))(x);
    const [refDx] = referenceBatchNormGrads(x, dy, mean, variance, scale, 0.001);
    expect(bits(dx.dataSync() as Float32Array)).toEqual(bits(refDx!));
    expect(tf.getBackend()).toBe('cpu');
    expect(fusedGradientCalls()).toEqual(calls);
    tf.dispose([x, dy, mean, variance, scale, offset, dx]);
    await tf.setBackend(NATIVE_BACKEND_NAME);
  });
});
