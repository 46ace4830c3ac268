/**
 * Bounded-concurrency map: runs `fn` over `items` with at most `concurrency` calls in flight and
 * returns the results in input order. The first rejection rejects the whole map and no further items are
 * started (calls already in flight are not awaited).
 */
export async function mapLimit<T, R>(items: readonly T[], concurrency: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const workers: Promise<void>[] = [];
  const width = Math.max(1, Math.min(Math.floor(concurrency) || 1, items.length));
  for (let w = 0; w < width; w++) {
    workers.push(
      (async () => {
        while (!failed) {
          const i = next++;
          if (i >= items.length) return;
          try {
            results[i] = await fn(items[i] as T, i);
          } catch (e) {
            failed = true;
            throw e;
          }
        }
      })(),
    );
  }
  await Promise.all(workers);
  return results;
}
