import { describe, expect, it, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { AdamOptimizer, SgdOptimizer, createOptimizer, optimizerFromState } from './optimizers.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Linear least squares: loss(w) = mean((X w - y)^2). */
function problem(): { x: tf.Tensor2D; y: tf.Tensor1D; w0: Float32Array } {
  const x = tf.tensor2d([
    [1, 2, 0.5],
    [0.3, -1, 2],
    [2, 0.1, -0.7],
    [-1, 1, 1],
    [0.5, 0.5, 0.5],
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

describe('AdamW, weight decay and Nesterov SGD (reference formulas)', () => {
  const g = [new Float32Array([0.5, -1, 2, 0]), new Float32Array([-0.25, 0.5, 1, 3]), new Float32Array([1, 1, -1, -2])];
  const w0 = new Float32Array([1, -2, 0.5, 3]);

  it('adamw = Keras 3 AdamW: w -= lr·wd·w, then the Adam update, step after step', () => {
    const lr = 0.01;
    const wd = 0.05;
    const opt = createOptimizer({ optimizer: 'adamw', weightDecay: wd, momentum: 0, nesterov: false }, lr);
    const w = w0.slice();
    const ref = Array.from(w0, Number);
    const m = [0, 0, 0, 0];
    const v = [0, 0, 0, 0];
    g.forEach((grad, s) => {
      opt.step(w, grad);
      const t = s + 1;
      for (let i = 0; i < 4; i++) {
        ref[i] = Math.fround(ref[i]! - lr * wd * ref[i]!);
        m[i] = Math.fround(0.9 * m[i]! + 0.1 * grad[i]!);
        v[i] = Math.fround(0.999 * v[i]! + 0.001 * grad[i]! * grad[i]!);
        const lrT = (lr * Math.sqrt(1 - 0.999 ** t)) / (1 - 0.9 ** t);
        ref[i] = Math.fround(ref[i]! - (lrT * m[i]!) / (Math.sqrt(v[i]!) + 1e-7));
      }
    });
    Array.from(w).forEach((x, i) => expect(x).toBeCloseTo(ref[i]!, 6));
  });

  it("adamw without --weight-decay uses Keras' default 0.004; adam has none", () => {
    const a = createOptimizer({ optimizer: 'adamw', momentum: 0, nesterov: false }, 0.1) as AdamOptimizer;
    const b = createOptimizer({ optimizer: 'adam', momentum: 0, nesterov: false }, 0.1) as AdamOptimizer;
    expect(a.weightDecay).toBe(0.004);
    expect(b.weightDecay).toBe(0);
    const wa = new Float32Array([2]);
    const wb = new Float32Array([2]);
    a.step(wa, new Float32Array([0]));
    b.step(wb, new Float32Array([0]));
    expect(wa[0]).toBeCloseTo(2 - 0.1 * 0.004 * 2, 7);
    expect(wb[0]).toBe(2);
  });

  it('sgd with Nesterov momentum = Keras: v = μv - lr·g; w += μv - lr·g', () => {
    const lr = 0.1;
    const mu = 0.9;
    const opt = createOptimizer({ optimizer: 'sgd', momentum: mu, nesterov: true, weightDecay: 0.01 }, lr);
    const w = w0.slice();
    const ref = Array.from(w0, Number);
    const vel = [0, 0, 0, 0];
    for (const grad of g) {
      opt.step(w, grad);
      for (let i = 0; i < 4; i++) {
        ref[i] = Math.fround(ref[i]! - lr * 0.01 * ref[i]!);
        vel[i] = Math.fround(mu * vel[i]! - lr * grad[i]!);
        ref[i] = Math.fround(ref[i]! + mu * vel[i]! - lr * grad[i]!);
      }
    }
    Array.from(w).forEach((x, i) => expect(x).toBeCloseTo(ref[i]!, 6));
  });
});

describe('AdamOptimizer refuses non-finite state', () => {
  it('refuses a finite but huge gradient instead of storing v = +Inf, and changes nothing', () => {
    const opt = new AdamOptimizer({ learningRate: 1e-3 });
    const w = new Float32Array([0.1, -0.2, 0.3, 0.4]);
    opt.step(w, new Float32Array([0.1, 0.2, -0.3, 0.05]));
    const w1 = w.slice();
    const s1 = opt.exportState();
    let err: unknown;
    try {
      opt.step(w, new Float32Array([0.1, 2e25, -0.3, 0.05]));
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'E_OPTIMIZER_NONFINITE', message: expect.stringContaining('weight 1') });
    expect([...w]).toEqual([...w1]);
    const s2 = opt.exportState();
    expect(s2.iterations).toBe(s1.iterations);
    expect([...s2.slots.v!]).toEqual([...s1.slots.v!]);
    expect([...s2.slots.m!]).toEqual([...s1.slots.m!]);
    // with decoupled weight decay (applied before the update) too: nothing changes
    const adamw = new AdamOptimizer({ learningRate: 1e-2, weightDecay: 0.1 });
    const w2 = new Float32Array([0.5, -0.5]);
    expect(() => adamw.step(w2, new Float32Array([1, 1e30]))).toThrow(expect.objectContaining({ code: 'E_OPTIMIZER_NONFINITE' }));
    expect([...w2]).toEqual([0.5, -0.5]);
    expect(adamw.iterations).toBe(0);
    // NaN and Inf are refused too
    expect(() => opt.step(w, new Float32Array([NaN, 0, 0, 0]))).toThrow(/non-finite/);
    expect(() => opt.step(w, new Float32Array([0, 0, Infinity, 0]))).toThrow(/non-finite/);
    // a sane gradient still trains
    opt.step(w, new Float32Array([0.1, 0.2, -0.3, 0.05]));
    expect(opt.iterations).toBe(2);
    expect(opt.exportState().slots.v!.every((x) => Number.isFinite(x))).toBe(true);
  });
});
