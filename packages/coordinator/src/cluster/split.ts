import { splitBatch } from '@dptrain/core';

/** Splits `items` into `parts` contiguous, near-equal slices (earlier slices take the remainder); no empty slice. */
export function contiguousSlices<T>(items: readonly T[], parts: number): T[][] {
  return splitBatch(items, Math.max(1, Math.min(parts, items.length))).filter((s) => s.length > 0);
}

/** Cuts `items` into chunks of at most `size`. */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
