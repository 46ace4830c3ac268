import { describe, expect, it, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { AdamOptimizer, SgdOptimizer, optimizerFromState } from './optimizers.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Linear least squares: loss(w) = mean((X w - y)^2). */
function problem(): { x: tf.Tensor2D; y: tf.Tensor1D; w0: Float32Array } {
  const x = tf.tensor2d([
    [1, 2, 0.5], [0.3, -1, 2], [2, 0.1, -0.7], [-1, 1, 1], [0.5, 0.5, 0.5],
  ]);
  const y = tf.tensor1d([1, -2, 0.5, 3, 0]);
  return { x, y, w0: new Float32Array([0.1, -0.2, 0.3]) };
}

function gradAt(x: tf.Tensor2D, y: tf.Tensor1D, w: Float32Array): Float32Array {
  return tf.tidy(() => {
    const g = tf.grad((wt: tf.Tensor) => tf.mean(tf.square(tf.sub(tf.matMul(x, wt.reshape([3, 1])).reshape([5]), y))))(tf.tensor1d(w));
    return g.dataSync() as Float32Array;
  });
}

describe('AdamOptimizer', () => {
  it('takes the same steps as tf.train.adam (lr 0.01, 30 steps)', () => {
    const { x, y, w0 } = problem();
    const v = tf.variable(tf.tensor1d(w0));
    const tfAdam = tf.train.adam(0.01, 0.9, 0.999, 1e-7);
    const ours = new AdamOptimizer({ learningRate: 0.01 });
    const w = w0.slice();
    for (let i = 0; i < 30; i++) {
      tfAdam.minimize(() => tf.mean(tf.square(tf.sub(tf.matMul(x, v.reshape([3, 1])).reshape([5]), y))) as tf.Scalar);
      ours.step(w, gradAt(x, y, w));
      const ref = v.dataSync();
      for (let k = 0; k < 3; k++) expect(w[k]).toBeCloseTo(ref[k] as number, 5);
    }
    // it actually moved
    expect(Math.abs((w[0] as number) - (w0[0] as number))).toBeGreaterThan(0.1);
    expect(ours.iterations).toBe(30);
    tfAdam.dispose();
    v.dispose();
    x.dispose();
    y.dispose();
  });

  it('first step moves every weight by lr·sign(g) (bias correction)', () => {
    const opt = new AdamOptimizer({ learningRate: 0.1 });
    const w = new Float32Array([0, 0, 0]);
    opt.step(w, new Float32Array([3, -0.5, 1e-3]));
    expect(w[0]).toBeCloseTo(-0.1, 5);
    expect(w[1]).toBeCloseTo(0.1, 5);
    expect(w[2]).toBeCloseTo(-0.1, 3);
  });

  it('exports and imports its state so that a restored copy continues identically', () => {
    const a = new AdamOptimizer({ learningRate: 0.05 });
    const w = new Float32Array([1, 2, 3, 4]);
    const g = (i: number): Float32Array => new Float32Array([Math.sin(i), Math.cos(i), 0.1 * i, -1]);
    for (let i = 0; i < 5; i++) a.step(w, g(i));
    const b = optimizerFromState(JSON.parse(JSON.stringify({ ...a.exportState(), slots: {} })) as never);
    b.importState(a.exportState());
    const w2 = w.slice();
    for (let i = 5; i < 10; i++) {
      a.step(w, g(i));
      b.step(w2, g(i));
    }
    expect(Array.from(w2)).toEqual(Array.from(w));
    a.learningRate = 0.001;
    expect(a.exportState().learningRate).toBe(0.001);
  });

  it('rejects a gradient of the wrong length', () => {
    expect(() => new AdamOptimizer().step(new Float32Array(3), new Float32Array(2))).toThrow(/gradient/);
  });
});

describe('SgdOptimizer', () => {
  it('matches tf.train.sgd and tf.train.momentum', () => {
    const { x, y, w0 } = problem();
    for (const momentum of [0, 0.9]) {
      const v = tf.variable(tf.tensor1d(w0));
      const ref = momentum === 0 ? tf.train.sgd(0.05) : tf.train.momentum(0.05, momentum);
      const ours = new SgdOptimizer({ learningRate: 0.05, momentum });
      const w = w0.slice();
      for (let i = 0; i < 10; i++) {
        ref.minimize(() => tf.mean(tf.square(tf.sub(tf.matMul(x, v.reshape([3, 1])).reshape([5]), y))) as tf.Scalar);
        ours.step(w, gradAt(x, y, w));
      }
      const r = v.dataSync();
      for (let k = 0; k < 3; k++) expect(w[k]).toBeCloseTo(r[k] as number, 5);
      const restored = optimizerFromState(ours.exportState());
      expect(restored.iterations).toBe(10);
      ref.dispose();
      v.dispose();
    }
  });
});
