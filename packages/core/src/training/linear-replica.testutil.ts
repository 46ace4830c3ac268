import * as tf from '@tensorflow/tfjs';
import { parseRunConfig, type RunConfig, type RunConfigInput } from '../config.js';
import type { Dataset, Sample } from '../data/types.js';
import type { PhaseName } from '../events/types.js';
import type { TrainData } from './run-outputs.js';
import type { GradientResult, Replica, StepContext, WeightSpec } from './types.js';

// Test helper (not exported by the barrel): a small but real Replica for recipe and executor tests.
export const D = 4;
export const C = 3;

/** Features of a sample: a noisy one-hot-ish code of its label, deterministic by index. */
function features(s: Sample): number[] {
  const f: number[] = [];
  for (let k = 0; k < D; k++) f.push(Math.sin(s.index * 12.9898 + k * 78.233) * 1.6 + (k === s.label ? 1.5 : 0));
  return f;
}

/**
 * A real (if small) Replica: softmax regression over fixed per-sample features, with a "fine_tune" phase that
 * adds a trainable feature scale. Gradients come from tfjs autodiff; no randomness.
 */
export class LinearReplica implements Replica {
  spec: WeightSpec[] = [];
  readonly baseHash = 'linear';
  private kernel = new Float32Array(D * C).map((_, i) => 0.01 * ((i % 5) - 2));
  private bias = new Float32Array(C);
  private scale = new Float32Array(D).fill(1);
  private phase: PhaseName = 'head';
  async setPhase(phase: PhaseName): Promise<void> {
    this.phase = phase;
    this.spec = [
      ...(phase === 'fine_tune' ? [{ name: 'scale', shape: [D], size: D }] : []),
      { name: 'kernel', shape: [D, C], size: D * C },
      { name: 'bias', shape: [C], size: C },
    ];
  }
  getWeights(): Float32Array {
    const parts = this.phase === 'fine_tune' ? [this.scale, this.kernel, this.bias] : [this.kernel, this.bias];
    const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
  setWeights(flat: Float32Array): void {
    let at = 0;
    if (this.phase === 'fine_tune') {
      this.scale = flat.slice(0, D);
      at = D;
    }
    this.kernel = flat.slice(at, at + D * C);
    this.bias = flat.slice(at + D * C, at + D * C + C);
  }
  private logits(x: tf.Tensor2D, scale: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor): tf.Tensor2D {
    return tf.add(tf.matMul(tf.mul(x, scale), kernel.reshape([D, C])), bias) as tf.Tensor2D;
  }
  async computeGradients(samples: Sample[], _ctx: StepContext): Promise<GradientResult> {
    return tf.tidy(() => {
      const x = tf.tensor2d(samples.map(features));
      const y = tf.oneHot(
        tf.tensor1d(
          samples.map((s) => s.label),
          'int32',
        ),
        C,
      );
      const vars = [tf.tensor1d(this.scale), tf.tensor1d(this.kernel), tf.tensor1d(this.bias)];
      const f = (sc: tf.Tensor, k: tf.Tensor, b: tf.Tensor): tf.Scalar => tf.losses.softmaxCrossEntropy(y, this.logits(x, sc, k, b)) as tf.Scalar;
      const { value, grads } = tf.valueAndGrads(f)(vars);
      const logits = this.logits(x, vars[0] as tf.Tensor, vars[1] as tf.Tensor, vars[2] as tf.Tensor);
      const correct = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), tf.argMax(y, 1)), 'int32')).dataSync()[0] as number;
      const g = grads.map((t) => t.dataSync() as Float32Array);
      const parts = this.phase === 'fine_tune' ? g : g.slice(1);
      const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.length;
      }
      return { gradients: out, loss: value.dataSync()[0] as number, count: samples.length, correct };
    });
  }
  async predict(samples: Sample[]): Promise<Float32Array> {
    return tf.tidy(
      () =>
        tf
          .softmax(this.logits(tf.tensor2d(samples.map(features)), tf.tensor1d(this.scale), tf.tensor1d(this.kernel), tf.tensor1d(this.bias)))
          .dataSync() as Float32Array,
    );
  }
  dispose(): void {}
}

/**
 * A data set for LinearReplica: `nTrain` training and `nVal` validation samples (labels cycle over the C classes)
 * and `nTest` unlabelled test samples whose indices (1000+) give them features unlike the training ones.
 */
export function linearTrainData(nTrain: number, nVal: number, nTest = 0): TrainData {
  const mk = (split: 'labelled' | 'test', i: number, label: number): Sample => ({
    split,
    index: i,
    name: `${split}${i}.jpg`,
    path: `/nowhere/${split}${i}.jpg`,
    label,
  });
  const labelled = Array.from({ length: nTrain + nVal }, (_, i) => mk('labelled', i, i % C));
  const test = Array.from({ length: nTest }, (_, i) => ({ ...mk('test', i, -1), index: 1000 + i }));
  const dataset: Dataset = {
    layout: 'competition',
    root: '/nowhere',
    classNames: ['a', 'b', 'c'],
    labelled,
    test: test.map((t, i) => ({ ...t, index: i })),
    hash: 'h1',
  };
  return { dataset, train: labelled.slice(0, nTrain), val: labelled.slice(nTrain), test };
}

/** A run config for LinearReplica runs: batch 8, early stopping out of reach (patience 10), the given phases, then `over`. */
export function linearConfig(
  headPhase: { epochs: number; learningRate: number },
  fineTunePhase: { epochs: number; learningRate: number },
  over: Partial<RunConfigInput> = {},
): RunConfig {
  return parseRunConfig({ dataDir: '/nowhere', batchSize: 8, headPhase, fineTunePhase: { ...fineTunePhase, unfreeze: 'x' }, patience: 10, ...over });
}
