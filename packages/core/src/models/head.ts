import * as tf from '@tensorflow/tfjs';
import type { HeadSpec } from '../config.js';
import { rngFor } from '../util/rng.js';

/** Layer names of the classification head (stable: saved models and weight specs use them). */
export const HEAD_LAYERS = {
  pool: 'head_pool',
  dense: 'head_dense',
  dropout: 'head_dropout',
  logits: 'head_logits',
  softmax: 'head_softmax',
} as const;

export interface HeadOptions {
  /** Head shape (pooling, units, dropout). */
  spec: HeadSpec;
  /** Number of classes C. */
  numClasses: number;
  /** Seed of the initialisation. Default 42. */
  seed?: number;
}

/** The head's layers; applied symbolically on the backbone's cut output to form the full model. */
export interface Head {
  pool: tf.layers.Layer;
  dense: tf.layers.Layer;
  dropout: tf.layers.Layer;
  logits: tf.layers.Layer;
  softmax: tf.layers.Layer;
  spec: HeadSpec;
  numClasses: number;
}

/** GAP (or Flatten) → Dense(units, relu) → Dropout → Dense(C) → softmax, seeded glorot-uniform init. */
export function createHead(options: HeadOptions): Head {
  const seed = options.seed ?? 42;
  const { spec } = options;
  return {
    pool: spec.pooling === 'gap' ? tf.layers.globalAveragePooling2d({ name: HEAD_LAYERS.pool }) : tf.layers.flatten({ name: HEAD_LAYERS.pool }),
    dense: tf.layers.dense({
      name: HEAD_LAYERS.dense,
      units: spec.units,
      activation: 'relu',
      kernelInitializer: tf.initializers.glorotUniform({ seed: seed * 7919 + 1 }),
    }),
    dropout: tf.layers.dropout({ name: HEAD_LAYERS.dropout, rate: spec.dropout }),
    logits: tf.layers.dense({
      name: HEAD_LAYERS.logits,
      units: options.numClasses,
      activation: 'linear',
      kernelInitializer: tf.initializers.glorotUniform({ seed: seed * 7919 + 2 }),
    }),
    softmax: tf.layers.activation({ name: HEAD_LAYERS.softmax, activation: 'softmax' }),
    spec,
    numClasses: options.numClasses,
  };
}

/** Apply the head symbolically: features → probabilities. */
export function applyHead(head: Head, features: tf.SymbolicTensor): tf.SymbolicTensor {
  let x = head.pool.apply(features) as tf.SymbolicTensor;
  x = head.dense.apply(x) as tf.SymbolicTensor;
  x = head.dropout.apply(x) as tf.SymbolicTensor;
  x = head.logits.apply(x) as tf.SymbolicTensor;
  return head.softmax.apply(x) as tf.SymbolicTensor;
}

/** Identifies one sample within a step, for the dropout mask. */
export interface DropoutKey {
  split: 'labelled' | 'test';
  index: number;
}

/**
 * Inverted-dropout masks, one row of `units` per sample: entry 0 with probability `rate`, else 1/(1-rate).
 * Each row depends only on (seed, step, sample), so sharding a batch across workers gives the same masks.
 */
export function dropoutMask(rate: number, units: number, seed: number, step: number, samples: DropoutKey[]): Float32Array {
  const out = new Float32Array(samples.length * units);
  if (rate <= 0) return out.fill(1);
  const keep = rate >= 1 ? 0 : 1 / (1 - rate);
  samples.forEach((s, i) => {
    const rand = rngFor(seed, step, s.split === 'test' ? 1 : 0, s.index, 0x0d0f);
    for (let j = 0; j < units; j++) out[i * units + j] = rand() < rate ? 0 : keep;
  });
  return out;
}
