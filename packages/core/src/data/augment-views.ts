import { rngFor } from '../util/rng.js';

/** Salt of the view draws' random stream, so they never reuse the augmentation parameters' draws (seed, view, index). */
const VIEW_STREAM = 0x76696577; // 'view'

/**
 * Which of the K cached augmented views sample `index` trains on in (global) `epoch`: every K epochs form a
 * cycle in which each sample sees each of its K views once, in an order shuffled per (seed, cycle, sample).
 * A pure function of its arguments, so every worker of a cluster picks the same view for the same sample.
 */
export function augmentViewFor(seed: number, epoch: number, index: number, views: number): number {
  if (!Number.isInteger(views) || views < 1) throw new RangeError(`augmentViewFor: views must be a positive integer, got ${views}`);
  if (views === 1) return 0;
  const cycle = Math.floor(epoch / views);
  const order = Array.from({ length: views }, (_, k) => k);
  const rng = rngFor(VIEW_STREAM, seed, cycle, index);
  for (let k = views - 1; k > 0; k--) {
    const j = Math.floor(rng() * (k + 1));
    [order[k], order[j]] = [order[j]!, order[k]!];
  }
  return order[epoch - cycle * views]!;
}
