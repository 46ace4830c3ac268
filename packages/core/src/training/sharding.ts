import { DptrainError } from '../errors.js';
import { mixSeed, mulberry32, shuffleInPlace } from '../util/rng.js';

/** Number of global steps in an epoch of `n` samples (the uneven last batch counts as a step). */
export function stepsPerEpoch(n: number, batchSize: number): number {
  if (batchSize <= 0) throw new DptrainError('E_CONFIG', `batch size must be positive, got ${batchSize}`);
  return Math.ceil(n / batchSize);
}

/** The order in which epoch `epoch` visits samples 0..n-1: a Fisher-Yates permutation seeded by (seed, epoch). */
export function epochPermutation(n: number, seed: number, epoch: number): Int32Array {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  return shuffleInPlace(order, mulberry32(mixSeed(seed, epoch, 0x5eed)));
}

/**
 * Sample indices of global batch `step` (0-based) of an epoch: contiguous runs of the epoch permutation.
 * Every index appears exactly once per epoch; the last batch may be smaller (no padding duplicates).
 */
export function globalBatch(n: number, batchSize: number, seed: number, epoch: number, step: number, order?: Int32Array): number[] {
  const perm = order ?? epochPermutation(n, seed, epoch);
  const start = step * batchSize;
  if (step < 0 || start >= n) throw new DptrainError('E_CONFIG', `step ${step} is outside the epoch (${stepsPerEpoch(n, batchSize)} steps)`);
  return Array.from(perm.subarray(start, Math.min(n, start + batchSize)));
}

/** All global batches of an epoch, in order. */
export function epochBatches(n: number, batchSize: number, seed: number, epoch: number): number[][] {
  const order = epochPermutation(n, seed, epoch);
  const steps = stepsPerEpoch(n, batchSize);
  const out: number[][] = [];
  for (let s = 0; s < steps; s++) out.push(globalBatch(n, batchSize, seed, epoch, s, order));
  return out;
}
