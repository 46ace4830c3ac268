/**
 * A model-free replica for the exchange benchmarks: one flat trainable tensor of `floats` values, gradients of
 * that size returned at once (a fixed small value), and a matching stand-in data set. A worker built on it runs
 * the real worker code (startWorker: handshake, join, phase, step, gradients and weights frames) and costs
 * nothing but the exchange itself.
 */
import type { Dataset, Replica, Sample } from '@dptrain/core';

/** Hash the synthetic replica reports as its frozen base by default (the loopback exchange bench's). */
export const SYNTHETIC_BASE_HASH = 'exchange-bench';
const SYNTHETIC_CLASSES = ['a', 'b'];

/** Options of {@link syntheticReplica}. */
export interface SyntheticReplicaOptions {
  /** Trainable floats (the gradient's and the weights' length). Required. */
  floats: number;
  /** Value of every gradient element. Default 1e-3. */
  gradientValue?: number;
  /** Frozen-base hash it reports at join (the lab's: the run config's backbone, hashed). Default SYNTHETIC_BASE_HASH. */
  baseHash?: string;
  /**
   * Time a gradient takes per sample, ms (a timer: no CPU). The coordinator shares a step by each worker's measured
   * compute rate: a fixed, equal one gives equal shares, where the bare timing noise of a free step would not. Default 0.
   */
  computeMsPerSample?: number;
}

/** A replica whose gradient is `floats` copies of one value and whose forward pass is free. */
export function syntheticReplica(options: SyntheticReplicaOptions): Replica {
  const floats = options.floats;
  const grad = new Float32Array(floats).fill(options.gradientValue ?? 1e-3);
  let weights: Float32Array = new Float32Array(floats);
  return {
    spec: [{ name: 'exchange/flat', shape: [floats], size: floats }],
    baseHash: options.baseHash ?? SYNTHETIC_BASE_HASH,
    setPhase: async () => undefined,
    getWeights: () => weights,
    setWeights: (w) => {
      weights = w;
    },
    computeGradients: async (samples) => {
      const ms = (options.computeMsPerSample ?? 0) * samples.length;
      if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
      return { gradients: grad, loss: 1, count: samples.length, correct: 0 };
    },
    predict: async (samples) => new Float32Array(samples.length * SYNTHETIC_CLASSES.length),
    dispose: () => undefined,
  };
}

/** Options of {@link syntheticDataset}. */
export interface SyntheticDatasetOptions {
  /** Labelled samples. Default 1024. */
  labelled?: number;
}

/** The labelled samples a synthetic replica "trains" on (no files behind them). */
export function syntheticDataset(options: SyntheticDatasetOptions = {}): Dataset {
  const n = options.labelled ?? 1024;
  const labelled: Sample[] = Array.from({ length: n }, (_, i) => ({ split: 'labelled', index: i, name: `${i}`, path: `/${i}`, label: i % 2 }));
  return { layout: 'competition', root: '/bench', classNames: SYNTHETIC_CLASSES, labelled, test: [], hash: 'exchange-bench' };
}
