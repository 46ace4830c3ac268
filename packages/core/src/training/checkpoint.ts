import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { DptrainError } from '../errors.js';
import type { PhaseName } from '../events/types.js';
import type { OptimizerState } from './optimizers.js';
import type { WeightSpec } from './types.js';
import { decodeState, encodeState } from './state-codec.js';
import { writeFileAtomic } from './atomic-write.js';
import { openCheckpoint, sealCheckpoint } from './checkpoint-envelope.js';
import type { RunFingerprint } from './run-fingerprint.js';

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
  /** Format of the body: 2 (written now) carries `fingerprint`; 1 (older files) does not. */
  version: 1 | 2;
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
  /** The settings the run's weights depend on (see runFingerprint); absent in version-1 checkpoints. */
  fingerprint?: RunFingerprint;
}

export const CHECKPOINT_FILE = 'checkpoint.bin';

export function checkpointPath(runDir: string): string {
  return path.join(runDir, CHECKPOINT_FILE);
}

/** Writes the checkpoint atomically (temp file + fsync + rename + directory fsync), sealed with its length and SHA-256. Returns its path. */
export async function writeCheckpoint(runDir: string, ckpt: TrainingCheckpoint): Promise<string> {
  const file = checkpointPath(runDir);
  await writeFileAtomic(file, sealCheckpoint(encodeState({ ...ckpt, version: 2 })));
  return file;
}

export interface ReadCheckpointOptions {
  /** Called with a warning, e.g. that a version-1 checkpoint carries no integrity check. Default: none. */
  onWarning?: (message: string) => void;
}

/**
 * Reads the run's checkpoint; undefined when there is none. Checks the envelope (length, SHA-256, no trailing
 * bytes), the body's structure, and that weights and optimizer state are finite; throws DptrainError('E_CHECKPOINT')
 * naming the file and what was wrong. A version-1 file (no envelope) loads with a warning.
 */
export async function readCheckpoint(runDir: string, options: ReadCheckpointOptions = {}): Promise<TrainingCheckpoint | undefined> {
  const file = checkpointPath(runDir);
  let buf: Buffer;
  try {
    buf = await fs.readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new DptrainError('E_CHECKPOINT', `cannot read ${file}: ${(e as Error).message}`);
  }
  const opened = openCheckpoint(buf, file);
  const ckpt = decodeState<TrainingCheckpoint>(opened.body, file);
  if (!ckpt || typeof ckpt !== 'object' || (ckpt.version !== 1 && ckpt.version !== 2) || ckpt.version !== opened.version) {
    throw new DptrainError('E_CHECKPOINT', `${file}: unsupported checkpoint version ${String((ckpt as Partial<TrainingCheckpoint> | null)?.version)}`);
  }
  if (opened.version === 1) {
    options.onWarning?.(
      `${file} is a version-1 checkpoint: it carries no integrity check and no settings fingerprint; the next checkpoint is written in version 2`,
    );
  }
  checkCheckpointContent(ckpt, file);
  return ckpt;
}

/** Throws E_CHECKPOINT when the weights or the optimizer state are missing, mis-sized or not finite. */
function checkCheckpointContent(ckpt: TrainingCheckpoint, file: string): void {
  const fail = (what: string): never => {
    throw new DptrainError('E_CHECKPOINT', `${file}: ${what}`);
  };
  if (!(ckpt.weights instanceof Float32Array)) fail('weights are missing');
  const specSize = Array.isArray(ckpt.spec) ? ckpt.spec.reduce((s, w) => s + (w?.size ?? 0), 0) : -1;
  if (specSize !== ckpt.weights.length) fail(`${ckpt.weights.length} weights for a spec of ${specSize}`);
  const firstBad = (a: Float32Array): number => a.findIndex((x) => !Number.isFinite(x));
  const w = firstBad(ckpt.weights);
  if (w >= 0) fail(`weight ${w} is ${ckpt.weights[w]} (weights must be finite)`);
  const opt = ckpt.optimizer;
  if (!opt || typeof opt !== 'object' || !opt.slots || typeof opt.slots !== 'object') fail('optimizer state is missing');
  if (!Number.isFinite(opt.learningRate) || !Number.isFinite(opt.iterations))
    fail(`optimizer learning rate ${opt.learningRate} / iterations ${opt.iterations} are not finite`);
  for (const [name, slot] of Object.entries(opt.slots)) {
    if (!(slot instanceof Float32Array)) fail(`optimizer slot ${name} is not an array`);
    if (slot.length !== ckpt.weights.length) fail(`optimizer slot ${name} has ${slot.length} values for ${ckpt.weights.length} weights`);
    const i = firstBad(slot);
    if (i >= 0) fail(`optimizer slot ${name}[${i}] is ${slot[i]} (optimizer state must be finite)`);
  }
}
