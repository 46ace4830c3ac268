import type { Sample } from '../data/types.js';
import { DptrainError } from '../errors.js';
import { clipByGlobalNorm } from './gradient-norm.js';
import type { StepContext, TrainingExecutor, TrainingUpdate, TrainStepResult } from './types.js';

/**
 * The update of one step from its mean gradient, where the optimizer runs: the gradient's length and the loss
 * are checked, the gradient is clipped to `update.clipNorm` (bucketed norm, see l2Norm) and the optimizer steps
 * the weights in place. Executors that apply the update themselves (trainStep) must give the same bits.
 */
export function applyTrainingUpdate(gradients: Float32Array, loss: number, update: TrainingUpdate, step: number): void {
  checkStepResult(gradients.length, loss, update.weights.length, step);
  if (update.clipNorm > 0) clipByGlobalNorm(gradients, update.clipNorm);
  update.optimizer.step(update.weights, gradients);
}

/** The checks every step's mean gradient passes before any update: its length (E_GRADIENT_SHAPE) and a finite loss. */
export function checkStepResult(gradientLength: number, loss: number, weightCount: number, step: number): void {
  if (gradientLength !== weightCount) {
    throw new DptrainError('E_GRADIENT_SHAPE', `step ${step}: ${gradientLength} gradient values for ${weightCount} weights`);
  }
  if (!Number.isFinite(loss)) throw new DptrainError('E_GRADIENT_NONFINITE', `step ${step}: loss is ${loss}`);
}

/**
 * One training step through `executor`: its own `trainStep` when it has one (a cluster that overlaps merging,
 * updating and sending), else computeGradients + applyTrainingUpdate + setWeights. Same bits either way.
 */
export async function runTrainingStep(executor: TrainingExecutor, samples: Sample[], ctx: StepContext, update: TrainingUpdate): Promise<TrainStepResult> {
  if (executor.trainStep) return executor.trainStep(samples, ctx, update);
  const { gradients, ...rest } = await executor.computeGradients(samples, ctx);
  applyTrainingUpdate(gradients, rest.loss, update, ctx.step);
  await executor.setWeights(update.weights);
  return rest;
}
