import { rngFor, shuffleInPlace } from '../util/rng.js';
import type { Sample } from './types.js';

export interface StratifiedSplitOptions {
  /** Fraction of each class that goes to validation. Default 0.2. */
  fraction?: number;
  /** Seed of the per-class shuffles. Default 0. */
  seed?: number;
}

export interface DataSplit {
  /** Training samples, in data set order (indices unchanged). */
  train: Sample[];
  /** Validation samples, in data set order (indices unchanged). */
  validation: Sample[];
}

const SPLIT_STREAM = 0x5711;

/**
 * Stratified train/validation split: each class is shuffled with a PRNG seeded by (seed, class) and its first
 * round(n * fraction) samples go to validation (at least one when the class has 2+ samples and fraction > 0,
 * never all of them). Deterministic for a given seed and sample list; samples keep their `index`.
 */
export function stratifiedSplit(samples: readonly Sample[], options: StratifiedSplitOptions = {}): DataSplit {
  const fraction = options.fraction ?? 0.2;
  const seed = options.seed ?? 0;
  if (!(fraction >= 0 && fraction < 1)) throw new RangeError(`validation fraction must be in [0, 1), got ${fraction}`);
  const byClass = new Map<number, Sample[]>();
  for (const s of samples) {
    const list = byClass.get(s.label) ?? [];
    list.push(s);
    byClass.set(s.label, list);
  }
  const valSet = new Set<Sample>();
  for (const [label, list] of byClass) {
    const n = list.length;
    let k = Math.round(n * fraction);
    if (fraction > 0 && n >= 2) k = Math.min(Math.max(k, 1), n - 1);
    if (n < 2) k = 0;
    const order = shuffleInPlace([...list], rngFor(seed, SPLIT_STREAM, label));
    for (let i = 0; i < k; i++) valSet.add(order[i] as Sample);
  }
  return {
    train: samples.filter((s) => !valSet.has(s)),
    validation: samples.filter((s) => valSet.has(s)),
  };
}

export interface BatchesOptions {
  /** Shuffle (by seed and epoch) before cutting into batches. Default true. */
  shuffle?: boolean;
  /** Seed of the shuffle. Default 0. */
  seed?: number;
  /** Epoch: each epoch has its own order. Default 0. */
  epoch?: number;
  /** Drop the last, smaller batch. Default false. */
  dropRemainder?: boolean;
}

const SHUFFLE_STREAM = 0x5eed;

/** Deterministic epoch order: the samples shuffled by (seed, epoch). */
export function epochOrder<T>(samples: readonly T[], seed: number, epoch: number): T[] {
  return shuffleInPlace([...samples], rngFor(seed, SHUFFLE_STREAM, epoch));
}

/** Cuts samples into batches of `batchSize`, shuffled per epoch by default. */
export function makeBatches<T>(samples: readonly T[], batchSize: number, options: BatchesOptions = {}): T[][] {
  if (!(batchSize >= 1)) throw new RangeError(`batch size must be >= 1, got ${batchSize}`);
  const order = options.shuffle === false ? [...samples] : epochOrder(samples, options.seed ?? 0, options.epoch ?? 0);
  const out: T[][] = [];
  for (let i = 0; i < order.length; i += batchSize) {
    const b = order.slice(i, i + batchSize);
    if (b.length < batchSize && options.dropRemainder) break;
    out.push(b);
  }
  return out;
}
