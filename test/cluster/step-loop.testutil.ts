import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import {
  AdamOptimizer,
  InProcessExecutor,
  createReplica,
  globalBatch,
  runTrainingStep,
  stepsPerEpoch,
  type Dataset,
  type RunConfig,
  type TrainStepResult,
  type TrainingExecutor,
} from '@dptrain/core';

/** Learning rate of the step loops (large, so that any difference in a gradient shows in the weights). */
export const LOOP_LR = 3e-2;

/**
 * `steps` Adam steps of the head phase over the labelled samples in the recipe's batch order, through
 * `executor` (its own trainStep when it has one, as runTraining does), from `w0` (or the executor's initial
 * weights). `onStep` runs after each step, with its result. `optimizer`: its state at the end (gathered from the shards, if any).
 */
export async function trainSteps(
  executor: TrainingExecutor,
  dataset: Dataset,
  config: RunConfig,
  steps: number | (() => boolean),
  w0?: Float32Array,
  onStep?: (step: number, result: TrainStepResult) => void,
): Promise<{ weights: Float32Array; w0: Float32Array; steps: number; optimizer: AdamOptimizer }> {
  const begun = await executor.beginPhase('head', w0?.slice());
  const start = begun.weights.slice();
  const weights = begun.weights.slice();
  const opt = new AdamOptimizer({ learningRate: LOOP_LR });
  const samples = dataset.labelled;
  const spe = stepsPerEpoch(samples.length, config.batchSize);
  let s = 0;
  for (; typeof steps === 'number' ? s < steps : steps(); s++) {
    const epoch = Math.floor(s / spe);
    const batch = globalBatch(samples.length, config.batchSize, config.seed, epoch, s % spe).map((i) => samples[i]!);
    const res = await runTrainingStep(executor, batch, { phase: 'head', epoch, step: s }, { weights, optimizer: opt, clipNorm: 0 });
    if (res.count !== batch.length) throw new Error(`step ${s}: ${res.count} of ${batch.length} samples counted`);
    onStep?.(s, res);
  }
  await executor.syncOptimizerState?.(opt);
  return { weights, w0: start, steps: s, optimizer: opt };
}

/** `executor` without its trainStep: gradients there, the whole update here, then one `weights` frame (the path before the pipelined update). */
export function withoutTrainStep(executor: TrainingExecutor): TrainingExecutor {
  return {
    beginPhase: (p, w) => executor.beginPhase(p, w),
    computeGradients: (batch, ctx) => executor.computeGradients(batch, ctx),
    setWeights: (w) => executor.setWeights(w),
    predict: (batch, task) => executor.predict(batch, task),
    close: () => executor.close(),
  };
}

/** The same steps in this process on the cpu backend (what `dptrain train` computes). */
export async function inProcessWeights(dataset: Dataset, config: RunConfig, steps: number, w0: Float32Array): Promise<Float32Array> {
  await tf.setBackend('cpu');
  const local = new InProcessExecutor(await createReplica(config, { dataset, gradientBuffers: 2 }), { microBatch: config.microBatch });
  try {
    return (await trainSteps(local, dataset, config, steps, w0)).weights;
  } finally {
    await local.close();
  }
}

/** SHA-256 of the weights' bytes. */
export function sha256(w: Float32Array): string {
  return createHash('sha256')
    .update(Buffer.from(w.buffer, w.byteOffset, w.byteLength))
    .digest('hex');
}
