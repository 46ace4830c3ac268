import type { RunConfig } from '../config.js';
import type { PhaseName } from '../events/types.js';
import type { TrainingCallback, TrainingControl } from './callbacks.js';

/** How the learning rate moves within a phase. */
export type LearningRateScheduleKind = 'constant' | 'cosine' | 'step' | 'plateau';

/** Options of a {@link LearningRateScheduler}. */
export interface LearningRateSchedulerOptions {
  /** The schedule. 'plateau' leaves the rate to ReduceLrOnPlateau after the warmup. Default 'plateau'. */
  kind?: LearningRateScheduleKind;
  /** The phase's base learning rate (after any linear scaling). Required. */
  baseLr: number;
  /** Steps of one epoch. Required. */
  stepsPerEpoch: number;
  /** Epochs of the phase (the cosine's length). Required. */
  epochs: number;
  /** Linear warmup, in epochs (fractions allowed), counted in steps: step k of the warmup runs at base·(k+1)/W. Default 0. */
  warmupEpochs?: number;
  /** Cosine: the rate it ends at. Default 0. */
  minLr?: number;
  /** Step: epochs between two decays. Default: a third of the phase's epochs, at least 1. */
  stepEpochs?: number;
  /** Step: factor of each decay. Default 0.1. */
  decay?: number;
}

/**
 * The learning rate of step `k` of a phase (0-based), or undefined where the schedule leaves it as it is
 * ('constant' and 'plateau' after the warmup; the optimizer's rate then carries over, ReduceLrOnPlateau's
 * reductions included). Pure: a resumed run gets the same rates.
 */
export function scheduledLearningRate(k: number, o: LearningRateSchedulerOptions): number | undefined {
  const kind = o.kind ?? 'plateau';
  const total = Math.max(1, o.epochs * o.stepsPerEpoch);
  const warmup = Math.min(total, Math.round((o.warmupEpochs ?? 0) * o.stepsPerEpoch));
  if (k < warmup) return (o.baseLr * (k + 1)) / warmup;
  const minLr = o.minLr ?? 0;
  switch (kind) {
    case 'cosine': {
      const progress = total > warmup ? Math.min(1, (k - warmup) / (total - warmup)) : 1;
      return minLr + (o.baseLr - minLr) * 0.5 * (1 + Math.cos(Math.PI * progress));
    }
    case 'step': {
      const every = Math.max(1, o.stepEpochs ?? Math.round(o.epochs / 3));
      const epochsAfter = Math.floor((k - warmup) / o.stepsPerEpoch);
      return o.baseLr * Math.pow(o.decay ?? 0.1, Math.floor(epochsAfter / every));
    }
    default:
      return warmup > 0 && k === warmup ? o.baseLr : undefined;
  }
}

/**
 * Sets the learning rate before every step of a phase (Keras' `LearningRateScheduler`, per step, with the
 * linear warmup of Horovod's `LearningRateWarmupCallback` and Goyal et al.). Every step's rate is in its
 * `step_completed` event (dashboard, metrics, TensorBoard).
 */
export class LearningRateScheduler implements TrainingCallback {
  readonly name = 'learningRateScheduler';
  private control: TrainingControl | undefined;

  constructor(readonly options: LearningRateSchedulerOptions) {}

  setControl(control: TrainingControl): void {
    this.control = control;
  }

  onBatchBegin(batch: number, logs: { epoch: number }): void {
    const ctl = this.control;
    if (!ctl) return;
    const lr = scheduledLearningRate(logs.epoch * this.options.stepsPerEpoch + batch, this.options);
    if (lr !== undefined && lr !== ctl.getLearningRate()) ctl.setLearningRate(lr);
  }
}

/** Linear scaling (Goyal et al., Horovod): base rate × global batch / reference batch when `scaleLr` is on. */
export function phaseBaseLearningRate(config: RunConfig, phase: PhaseName): number {
  const lr = phase === 'head' ? config.headPhase.learningRate : config.fineTunePhase.learningRate;
  return config.scaleLr ? (lr * config.batchSize) / config.referenceBatch : lr;
}

/** The schedule options of a phase: the run's schedule, with the fine-tune overrides in phase 2. */
export function phaseSchedule(config: RunConfig, phase: PhaseName, stepsPerEpoch: number): LearningRateSchedulerOptions {
  const fine = phase === 'fine_tune';
  return {
    kind: (fine ? config.fineTuneLrSchedule : undefined) ?? config.lrSchedule,
    baseLr: phaseBaseLearningRate(config, phase),
    stepsPerEpoch,
    epochs: fine ? config.fineTunePhase.epochs : config.headPhase.epochs,
    warmupEpochs: (fine ? config.fineTuneWarmupEpochs : undefined) ?? config.warmupEpochs,
    minLr: config.minLr,
    ...(config.lrStepEpochs !== undefined ? { stepEpochs: config.lrStepEpochs } : {}),
    decay: config.lrDecay,
  };
}
