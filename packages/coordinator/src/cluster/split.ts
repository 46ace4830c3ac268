/** Splits `items` into `parts` contiguous, near-equal slices (earlier slices take the remainder); no empty slice. */
export function contiguousSlices<T>(items: readonly T[], parts: number): T[][] {
  const n = Math.max(1, Math.min(parts, items.length));
  const base = Math.floor(items.length / n);
  let extra = items.length % n;
  const out: T[][] = [];
  let at = 0;
  for (let i = 0; i < n; i++) {
    const size = base + (extra > 0 ? 1 : 0);
    if (extra > 0) extra--;
    out.push(items.slice(at, at + size));
    at += size;
  }
  return out.filter((s) => s.length > 0);
}

/** Cuts `items` into chunks of at most `size`. */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
