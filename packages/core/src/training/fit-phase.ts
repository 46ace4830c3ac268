import type { RunConfig } from '../config.js';
import type { Sample } from '../data/types.js';
import type { PhaseName, RunEvent } from '../events/types.js';
import type { Clock } from '../util/clock.js';
import type { ErrorContext } from '../util/error-context.js';
import { BestCheckpoint, CallbackList, EarlyStopping, type EpochLogs, ReduceLrOnPlateau, type TrainingCallback, type TrainingControl } from './callbacks.js';
import type { EpochProgress, TrainingCheckpoint } from './checkpoint.js';
import { LearningRateScheduler, phaseBaseLearningRate, phaseSchedule } from './lr-schedule.js';
import type { EvaluationMetrics } from './metrics.js';
import { createOptimizer, type FlatOptimizer } from './optimizers.js';
import type { RunFingerprint } from './run-fingerprint.js';
import type { RunOutputs, TrainData } from './run-outputs.js';
import { epochPermutation, globalBatch, stepsPerEpoch } from './sharding.js';
import { runTrainingStep } from './training-step.js';
import type { StepContext, TrainingExecutor, TrainStepResult, WeightSpec } from './types.js';

/** Epoch number fed to the sharding/augmentation seed: phases use disjoint ranges. */
export function globalEpoch(config: RunConfig, phase: PhaseName, epoch: number): number {
  return phase === 'head' ? epoch : config.headPhase.epochs + epoch;
}

/** What one phase of the fit loop needs from the run. */
export interface FitPhaseContext {
  config: RunConfig;
  data: TrainData;
  executor: TrainingExecutor;
  outputs: RunOutputs;
  clock: Clock;
  emit: (event: RunEvent) => void;
  /** Milliseconds per recipe stage, shared with the run (this phase adds its own). */
  timings: Record<string, number>;
  fingerprint: RunFingerprint;
  /** Scores a sample set with the executor's current weights (null for an empty set). */
  evaluate: (samples: Sample[]) => Promise<EvaluationMetrics | null>;
  /** Records where the run is, for an error that escapes. */
  setWhere: (where: ErrorContext) => void;
  /** Stop (as if killed) once this many global steps are done. Default: never. */
  haltAfterSteps?: number;
  /** Stops the phase after the step in flight, with a checkpoint of that position. Default: never. */
  stopSignal?: AbortSignal;
  /** Extra callbacks of the phase (after the built-in ones). Default: none. */
  extraCallbacks?: TrainingCallback[];
}

/** How a phase ended: all its epochs done (or stopped early by a callback), halted by haltAfterSteps, or stopped by the signal. */
export type PhaseOutcome = 'done' | 'halted' | 'stopped';

export interface PhaseResult {
  outcome: PhaseOutcome;
  /** Global steps applied so far, across phases. */
  step: number;
  spec: WeightSpec[];
  weights: Float32Array;
}

/** The phase's callbacks, in order: the schedule, best-epoch tracking, early stopping, the plateau rule, then extras. */
function phaseCallbacks(config: RunConfig, schedule: ReturnType<typeof phaseSchedule>, extra: TrainingCallback[]): CallbackList {
  return new CallbackList([
    new LearningRateScheduler(schedule),
    new BestCheckpoint(),
    new EarlyStopping({ patience: config.patience, restoreBestWeights: true }),
    ...(schedule.kind === 'plateau' ? [new ReduceLrOnPlateau({ factor: config.reduceLrFactor, patience: config.reduceLrPatience, minLr: config.minLr })] : []),
    ...extra,
  ]);
}

/** One optimizer step through the executor (its own trainStep when it has one): checked, clipped, applied, sent back. */
function trainStep(ctx: FitPhaseContext, optimizer: FlatOptimizer, weights: Float32Array, batch: Sample[], stepContext: StepContext): Promise<TrainStepResult> {
  return runTrainingStep(ctx.executor, batch, stepContext, { weights, optimizer, clipNorm: ctx.config.clipNorm });
}

/**
 * Runs one phase of the fit loop (Keras `model.fit` with callbacks): begins the phase on the executor (from the
 * checkpoint's weights when resuming), then epochs of steps over the seeded permutation, a validation pass and the
 * callbacks after each epoch, checkpoints every `config.checkpointEvery` steps, and a final checkpoint at the end.
 */
export async function runPhase(ctx: FitPhaseContext, phase: PhaseName, startStep: number, resume?: TrainingCheckpoint): Promise<PhaseResult> {
  const { config, data, executor, outputs, clock, emit, timings } = ctx;
  const epochs = phase === 'head' ? config.headPhase.epochs : config.fineTunePhase.epochs;
  let step = startStep;
  const tPhase = clock.now();
  ctx.setWhere({ phase, task: 'starting the phase' });
  const begun = await executor.beginPhase(phase, resume?.weights);
  let weights: Float32Array = begun.weights.slice();
  const spec = begun.spec;
  const optimizer = createOptimizer(config, phaseBaseLearningRate(config, phase));
  if (resume) optimizer.importState(resume.optimizer);

  const control: TrainingControl = {
    getWeights: () => weights,
    setWeights: async (w) => {
      weights = w.slice();
      await executor.setWeights(weights);
    },
    getLearningRate: () => optimizer.learningRate,
    setLearningRate: (lr) => {
      optimizer.learningRate = lr;
    },
    stopTraining: false,
    emit,
    now: () => clock.now(),
  };
  const n = data.train.length;
  const steps = stepsPerEpoch(n, config.batchSize);
  const schedule = phaseSchedule(config, phase, steps);
  const callbacks = phaseCallbacks(config, schedule, ctx.extraCallbacks ?? []);
  callbacks.setControl(control);
  await callbacks.onTrainBegin();
  if (resume) {
    callbacks.importState(resume.callbacks);
    control.stopTraining = resume.stopTraining;
  }
  emit({
    type: 'phase_started',
    time: clock.now(),
    phase,
    epochs,
    stepsPerEpoch: steps,
    learningRate: optimizer.learningRate,
    trainableParams: weights.length,
  });

  let epoch = resume?.epoch ?? 0;
  let firstStep = resume?.stepInEpoch ?? 0;
  let progress: EpochProgress = resume?.progress ?? { lossSum: 0, correct: 0, count: 0, elapsedMs: 0 };
  const result = (outcome: PhaseOutcome): PhaseResult => ({ outcome, step, spec, weights });
  const checkpoint = async (pos: { epoch: number; stepInEpoch: number; phaseDone: boolean; progress: EpochProgress }): Promise<void> => {
    await executor.syncOptimizerState?.(optimizer);
    await outputs.checkpoint({
      version: 2,
      phase,
      phaseDone: pos.phaseDone,
      epoch: pos.epoch,
      stepInEpoch: pos.stepInEpoch,
      step,
      spec,
      weights,
      optimizer: optimizer.exportState(),
      callbacks: callbacks.exportState(),
      stopTraining: control.stopTraining,
      rng: { seed: config.seed, epoch: globalEpoch(config, phase, pos.epoch) },
      progress: pos.progress,
      history: outputs.history,
      timings: { ...timings, [phase]: (timings[phase] ?? 0) + (clock.now() - tPhase) },
      datasetHash: data.dataset.hash,
      fingerprint: ctx.fingerprint,
    });
  };
  const checkpointDue = (): boolean => config.checkpointEvery > 0 && step % config.checkpointEvery === 0;

  for (; epoch < epochs && !control.stopTraining; epoch++) {
    const gEpoch = globalEpoch(config, phase, epoch);
    const tEpoch = clock.now() - progress.elapsedMs;
    const midEpoch = (stepInEpoch: number) => ({ epoch, stepInEpoch, phaseDone: false, progress: { ...progress, elapsedMs: clock.now() - tEpoch } });
    if (firstStep === 0) {
      await callbacks.onEpochBegin(epoch);
      emit({ type: 'epoch_started', time: clock.now(), phase, epoch });
    }
    const order = epochPermutation(n, config.seed, gEpoch);
    for (let s = firstStep; s < steps; s++) {
      const tStep = clock.now();
      ctx.setWhere({ phase, epoch: epoch + 1, step: step + 1 });
      await callbacks.onBatchBegin(s, { epoch });
      const batch = globalBatch(n, config.batchSize, config.seed, gEpoch, s, order).map((i) => data.train[i] as Sample);
      let res: Awaited<ReturnType<typeof trainStep>>;
      try {
        res = await trainStep(ctx, optimizer, weights, batch, { phase, epoch: gEpoch, step });
      } catch (err) {
        // stopped while the step could not run (a cluster waiting for workers): keep the steps done so far
        if (!ctx.stopSignal?.aborted) throw err;
        await checkpoint(midEpoch(s));
        return result('stopped');
      }
      step++;
      progress = {
        lossSum: progress.lossSum + res.loss * res.count,
        correct: progress.correct + res.correct,
        count: progress.count + res.count,
        elapsedMs: 0,
        learningRates: [...(progress.learningRates ?? []), optimizer.learningRate],
      };
      emit({
        type: 'step_completed',
        time: clock.now(),
        phase,
        epoch,
        step,
        stepInEpoch: s + 1,
        stepsPerEpoch: steps,
        loss: res.loss,
        samples: res.count,
        stepMs: clock.now() - tStep,
        learningRate: optimizer.learningRate,
        workers: res.workers,
        ...(res.straggler ? { straggler: res.straggler } : {}),
      });
      await callbacks.onBatchEnd(s, { loss: res.loss, samples: res.count, step });
      if (checkpointDue()) await checkpoint(midEpoch(s + 1));
      if (ctx.haltAfterSteps !== undefined && step >= ctx.haltAfterSteps) return result('halted');
      if (ctx.stopSignal?.aborted) {
        if (!checkpointDue()) await checkpoint(midEpoch(s + 1));
        return result('stopped');
      }
    }
    firstStep = 0;
    ctx.setWhere({ phase, epoch: epoch + 1, task: 'validation' });
    const val = await ctx.evaluate(data.val);
    const trainLoss = progress.count > 0 ? progress.lossSum / progress.count : 0;
    const trainAccuracy = progress.count > 0 ? progress.correct / progress.count : 0;
    const logs: EpochLogs = {
      trainLoss,
      trainAccuracy,
      // without a validation split, monitor the training figures
      valLoss: val ? val.loss : trainLoss,
      valAccuracy: val ? val.accuracy : trainAccuracy,
      learningRate: optimizer.learningRate,
    };
    const epochMs = clock.now() - tEpoch;
    await outputs.recordEpoch({ phase, epoch, step, ...logs, stepLearningRates: progress.learningRates ?? [], epochMs });
    emit({ type: 'epoch_completed', time: clock.now(), phase, epoch, ...logs, epochMs });
    await callbacks.onEpochEnd(epoch, logs);
    progress = { lossSum: 0, correct: 0, count: 0, elapsedMs: 0 };
  }
  await callbacks.onTrainEnd();
  timings[phase] = (timings[phase] ?? 0) + (clock.now() - tPhase);
  await checkpoint({ epoch, stepInEpoch: 0, phaseDone: true, progress });
  return result('done');
}
