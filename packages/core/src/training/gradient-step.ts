import * as tf from '@tensorflow/tfjs';
import { readTensorInto } from '../backend/read-into.js';
import type { RunConfig } from '../config.js';
import type { Sample } from '../data/types.js';
import { DptrainError } from '../errors.js';
import { dropoutMask, type Head } from '../models/head.js';
import type { PhaseModels } from './phase-graph.js';
import type { TransferCounter } from './transfer-counter.js';
import type { StepContext } from './types.js';

/** What a gradient step of the current phase needs: its models, the head, the run's loss settings and the transfer counter. */
export interface GradientStepContext {
  pm: PhaseModels;
  head: Head;
  config: RunConfig;
  numClasses: number;
  transfers: TransferCounter;
}

/** The samples' labels, each checked to be a class index (E_DATA_INVALID naming the sample otherwise). */
export function checkedLabels(samples: Sample[], numClasses: number): number[] {
  return samples.map((s) => {
    if (!Number.isInteger(s.label) || s.label < 0 || s.label >= numClasses) {
      throw new DptrainError('E_DATA_INVALID', `sample ${s.name} (${s.path}) has label ${s.label}, expected 0..${numClasses - 1}`);
    }
    return s.label;
  });
}

/**
 * Loss and trainable gradients of the current phase for features `x` (call inside tf.tidy): softmax cross-entropy
 * with label smoothing and class weights, the head's dropout mask seeded by (seed, step, sample). `logits` is kept
 * out of the tidy: the caller disposes it.
 */
export function lossAndGradients(
  g: GradientStepContext,
  x: tf.Tensor,
  labels: number[],
  samples: Sample[],
  ctx: StepContext,
): { value: tf.Scalar; grads: tf.NamedTensorMap; logits: tf.Tensor2D } {
  const { pm, head, config, numClasses } = g;
  const n = samples.length;
  const rate = head.spec.dropout;
  const units = head.spec.units;
  const smoothing = config.labelSmoothing;
  const hard = tf.oneHot(tf.tensor1d(labels, 'int32'), numClasses).toFloat();
  // Keras label smoothing: y·(1-ε) + ε/C
  const onehot = smoothing > 0 ? hard.mul(1 - smoothing).add(smoothing / numClasses) : hard;
  const cw = config.classWeight;
  const sampleWeights = Array.isArray(cw) ? tf.tensor1d(labels.map((y) => cw[y] ?? 1)) : undefined;
  const mask = rate > 0 ? tf.tensor2d(dropoutMask(rate, units, config.seed, ctx.step, samples), [n, units]) : undefined;
  g.transfers.up(n * 4 + (mask ? n * units * 4 : 0) + (sampleWeights ? n * 4 : 0));
  let logitsKept: tf.Tensor2D | undefined;
  const { value, grads } = tf.variableGrads(() => {
    const h = pm.tail.apply(x, { training: false }) as tf.Tensor;
    const logits = head.logits.apply(mask ? h.mul(mask) : h) as tf.Tensor2D;
    logitsKept = tf.keep(logits);
    if (!sampleWeights) return tf.neg(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)))).div(n) as tf.Scalar;
    // Keras class_weight: each sample's loss times its class's weight, still divided by the sample count
    const perSample = tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), 1);
    return tf.neg(tf.sum(tf.mul(perSample, sampleWeights))).div(n) as tf.Scalar;
  }, pm.vars);
  return { value, grads, logits: logitsKept! };
}

/**
 * One step's gradients on the host: loss and gradients for the features, read into `gradients` (laid out as the
 * phase's spec, zeros for variables without a gradient), with the loss and the count of correct predictions.
 */
export function hostGradients(
  g: GradientStepContext,
  feats: { data: Float32Array; shape: number[] },
  labels: number[],
  samples: Sample[],
  ctx: StepContext,
  gradients: Float32Array,
): { loss: number; correct: number } {
  const { pm, transfers } = g;
  const n = samples.length;
  let loss = 0;
  let correct = 0;
  tf.tidy(() => {
    const x = tf.tensor(feats.data, feats.shape);
    transfers.up(feats.data.byteLength);
    const { value, grads, logits } = lossAndGradients(g, x, labels, samples, ctx);
    loss = value.dataSync()[0]!;
    transfers.down(4);
    let off = 0;
    pm.vars.forEach((v, i) => {
      const grad = grads[v.name];
      const size = pm.spec[i]!.size;
      if (grad)
        readTensorInto(grad, gradients, off); // not dataSync: keeps the native backend's arrays recyclable
      else gradients.fill(0, off, off + size);
      if (grad) transfers.down(size * 4);
      off += size;
    });
    const pred = logits.argMax(1).dataSync();
    transfers.down(n * 4);
    for (let i = 0; i < n; i++) if (pred[i] === labels[i]) correct++;
    logits.dispose();
  });
  return { loss, correct };
}

/** One step's gradients left on the device (the device step): flat gradients, loss and correct count as tensors. */
export function deviceGradients(
  g: GradientStepContext,
  x: tf.Tensor,
  labels: number[],
  samples: Sample[],
  ctx: StepContext,
): { gradients: tf.Tensor1D; loss: tf.Scalar; correct: tf.Scalar } {
  const { pm } = g;
  return tf.tidy(() => {
    const { value, grads, logits } = lossAndGradients(g, x, labels, samples, ctx);
    const flat = tf.concat(pm.vars.map((v, i) => grads[v.name]?.reshape([-1]) ?? tf.zeros([pm.spec[i]!.size])));
    const correct = tf.sum(tf.equal(tf.argMax(logits, 1), tf.tensor1d(labels, 'int32')).toFloat());
    g.transfers.up(samples.length * 4);
    logits.dispose();
    return { gradients: flat as tf.Tensor1D, loss: value, correct: correct as tf.Scalar };
  });
}

/**
 * Flat gradient arrays used in turn (see ReplicaOptions.gradientBuffers): `next` hands out the next of `count`
 * reused buffers (not cleared), or a new array when `count` is 0.
 */
export class GradientBuffers {
  private readonly ring: Float32Array[] = [];
  private turn = 0;
  constructor(private readonly count: number) {}
  next(total: number): Float32Array {
    if (this.count <= 0) return new Float32Array(total);
    const i = this.turn++ % this.count;
    let buf = this.ring[i];
    if (!buf || buf.length !== total) {
      buf = new Float32Array(total);
      this.ring[i] = buf;
    }
    return buf; // hostGradients writes every segment (zeros for variables without a gradient)
  }
}
