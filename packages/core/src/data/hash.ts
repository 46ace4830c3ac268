import { createHash } from 'node:crypto';
import type { Sample } from './types.js';

/**
 * Hash of a data set's sample lists (names + labels, labelled then test) and its class names, so that
 * workers can prove they read the same data. Independent of the directory the data lives in.
 */
export function datasetHash(classNames: readonly string[], labelled: readonly Sample[], test: readonly Sample[]): string {
  const h = createHash('sha256');
  h.update(`classes\t${JSON.stringify(classNames)}\n`);
  for (const s of labelled) h.update(`L\t${s.name}\t${s.label}\n`);
  for (const s of test) h.update(`T\t${s.name}\n`);
  return h.digest('hex');
}
