import type { Sample } from '../data/types.js';
import type { PhaseName, ProgressTask, StepWorkerStat } from '../events/types.js';
import type { FlatOptimizer } from './optimizers.js';

/** Name and shape of one trainable variable; the flat weight/gradient vector is their concatenation in order. */
export interface WeightSpec {
  name: string;
  shape: number[];
  size: number;
}

/** What one replica returns for its slice of a step. */
export interface GradientResult {
  /** Mean gradient over the slice's samples, laid out as the WeightSpec list. */
  gradients: Float32Array;
  /** Mean cross-entropy over the slice. */
  loss: number;
  /** Number of samples in the slice. */
  count: number;
  /** Samples of the slice classified correctly (for the running train accuracy). */
  correct: number;
}

export interface StepContext {
  phase: PhaseName;
  epoch: number;
  /** Global step counter across the run. */
  step: number;
}

/**
 * A model replica: the frozen base + trainable part, on one backend, reading its own copy of the data.
 * Workers hold one; the in-process executor holds one. Implementations live in core/training/replica.ts.
 */
export interface Replica {
  /** Trainable weights of the current phase. */
  readonly spec: WeightSpec[];
  /** Hash of the frozen base weights (sent at join, checked by the coordinator). */
  readonly baseHash: string;
  /** Switch the trainable set (head only, or head + unfrozen block). */
  setPhase(phase: PhaseName): Promise<void>;
  getWeights(): Float32Array;
  setWeights(flat: Float32Array): void;
  /** Forward + backward on these samples (training mode: augmentation, dropout). */
  computeGradients(samples: Sample[], ctx: StepContext): Promise<GradientResult>;
  /** Class probabilities, samples.length x C, row-major (inference mode). */
  predict(samples: Sample[]): Promise<Float32Array>;
  dispose(): void;
}

/** The mean over all replicas of one step, weighted by sample count. */
export interface AggregatedGradients extends GradientResult {
  /** Per-worker figures for the dashboard (empty in process). */
  workers: StepWorkerStat[];
  /** Id of the slowest worker of the step. */
  straggler?: string;
}

/** What a training step updates when the executor applies the update itself (`TrainingExecutor.trainStep`). */
export interface TrainingUpdate {
  /** The trainable weights, updated in place. */
  weights: Float32Array;
  /** The run's optimizer (beginStep once, then stepRange over the ranges, or step). */
  optimizer: FlatOptimizer;
  /** Global-norm clipping of the mean gradient (`clipScale` of its bucketed norm); 0: off. */
  clipNorm: number;
}

/** What a step that the executor updated itself reports: the aggregate without the gradient. */
export type TrainStepResult = Omit<AggregatedGradients, 'gradients'>;

/**
 * Where gradients come from: one in-process replica, or a cluster of workers behind a coordinator.
 * The training recipe (core/training/recipe.ts) drives either through this interface.
 */
export interface TrainingExecutor {
  /** Begin a phase on every replica. Returns the phase's trainable spec and initial weights (replica 0's, or `weights` if given). */
  beginPhase(phase: PhaseName, weights?: Float32Array): Promise<{ spec: WeightSpec[]; weights: Float32Array }>;
  /** Mean gradient of the current weights over `samples` (the global batch), sharded across replicas. */
  computeGradients(samples: Sample[], ctx: StepContext): Promise<AggregatedGradients>;
  /**
   * Optional: one whole training step — the mean gradient over `samples`, checked (length, finite loss), clipped,
   * applied by `update.optimizer` to `update.weights` in place, and the new weights held by every replica — with
   * the same bits as computeGradients + applyTrainingUpdate + setWeights. An executor that can overlap these
   * (the cluster's pipelined buckets) implements it; runTraining uses it when present.
   */
  trainStep?(samples: Sample[], ctx: StepContext, update: TrainingUpdate): Promise<TrainStepResult>;
  /** Make every replica hold these trainable weights (after an optimizer step). */
  setWeights(weights: Float32Array): Promise<void>;
  /** Brings `optimizer`'s state up to date from wherever trainStep keeps it (before a checkpoint). Optional. */
  syncOptimizerState?(optimizer: FlatOptimizer): Promise<void>;
  /** Probabilities for each sample, sharded across replicas, gathered in input order (samples.length x C). */
  predict(samples: Sample[], task: ProgressTask): Promise<Float32Array>;
  close(): Promise<void>;
}
