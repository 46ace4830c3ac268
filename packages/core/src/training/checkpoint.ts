import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { DptrainError } from '../errors.js';
import type { PhaseName } from '../events/types.js';
import type { OptimizerState } from './optimizers.js';
import type { WeightSpec } from './types.js';
import { decodeState, encodeState } from './state-codec.js';
import { writeFileAtomic } from './atomic-write.js';

/** One line of metrics.jsonl. */
export interface EpochRecord {
  phase: PhaseName;
  /** Epoch within its phase (0-based). */
  epoch: number;
  /** Global step count at the end of the epoch. */
  step: number;
  trainLoss: number;
  trainAccuracy: number;
  valLoss: number;
  valAccuracy: number;
  learningRate: number;
  /** The learning rate of each step of the epoch, in order (absent in runs written before it was recorded). */
  stepLearningRates?: number[];
  epochMs: number;
}

/** Running sums of the epoch in progress (so a resumed epoch reports the same train loss/accuracy). */
export interface EpochProgress {
  lossSum: number;
  correct: number;
  count: number;
  /** Wall time already spent in this epoch before the checkpoint. */
  elapsedMs: number;
  /** Learning rates of the epoch's steps so far. */
  learningRates?: number[];
}

/**
 * Everything needed to continue a run exactly where it stopped. Positions are "next to do":
 * `stepInEpoch` is the first step of `epoch` not yet applied.
 */
export interface TrainingCheckpoint {
  version: 1;
  /** Phase in progress (or just finished, when `phaseDone`). */
  phase: PhaseName;
  /** The phase's epochs are all done (checkpoint written at the phase end). */
  phaseDone: boolean;
  /** Epoch within the phase (0-based). */
  epoch: number;
  /** Next step of `epoch` to run. */
  stepInEpoch: number;
  /** Global steps applied so far, across phases. */
  step: number;
  spec: WeightSpec[];
  weights: Float32Array;
  optimizer: OptimizerState;
  callbacks: Record<string, unknown>;
  /** Callbacks asked to stop the phase. */
  stopTraining: boolean;
  /**
   * Random state. The recipe's only randomness is the per-(seed, epoch) permutation (derived, not stateful),
   * so this records the seed and the epoch whose permutation is in use; augmentation and dropout are derived
   * from (seed, epoch, step, image) in the replica.
   */
  rng: { seed: number; epoch: number };
  progress: EpochProgress;
  /** Completed epochs so far (metrics.jsonl content). */
  history: EpochRecord[];
  /** Milliseconds spent per recipe stage before the checkpoint. */
  timings: Record<string, number>;
  /** Hash of the data set the run trained on. */
  datasetHash: string;
}

export const CHECKPOINT_FILE = 'checkpoint.bin';

export function checkpointPath(runDir: string): string {
  return path.join(runDir, CHECKPOINT_FILE);
}

/** Writes the checkpoint atomically (temp file + fsync + rename). Returns its path. */
export async function writeCheckpoint(runDir: string, ckpt: TrainingCheckpoint): Promise<string> {
  const file = checkpointPath(runDir);
  await writeFileAtomic(file, encodeState(ckpt));
  return file;
}

/** Reads the run's checkpoint; undefined when there is none. */
export async function readCheckpoint(runDir: string): Promise<TrainingCheckpoint | undefined> {
  const file = checkpointPath(runDir);
  let buf: Buffer;
  try {
    buf = await fs.readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new DptrainError('E_CHECKPOINT', `cannot read ${file}: ${(e as Error).message}`);
  }
  const ckpt = decodeState<TrainingCheckpoint>(buf, file);
  if (ckpt.version !== 1) throw new DptrainError('E_CHECKPOINT', `${file}: unsupported checkpoint version ${String(ckpt.version)}`);
  return ckpt;
}
