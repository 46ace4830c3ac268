import { DptrainError, chunks, type MessageOf, type Sample } from '@dptrain/core';
import type { Share } from './distribute.js';
import type { Peer } from './peer.js';

/** A prediction's samples cut into requests, and where each request's answer goes. */
export interface PredictionChunks {
  /** Contiguous chunks of at most `chunk` samples, each of one split (a request names one split). */
  parts: Share[];
  /** Where the samples of `part` (one of `parts`, or a part of one) start among all the samples. */
  offsetOf(part: readonly Sample[]): number;
}

/** Cuts `samples` into chunks of one split each, of at most `chunk` samples (at least 1). */
export function predictionChunks(samples: readonly Sample[], chunk: number): PredictionChunks {
  const groups: Sample[][] = [];
  for (const s of samples) {
    const last = groups[groups.length - 1];
    if (last && last[0]!.split === s.split) last.push(s);
    else groups.push([s]);
  }
  const parts = groups.flatMap((g) => chunks(g, Math.max(1, chunk))).map((indices): Share => ({ indices }));
  const offsets = new Map<readonly Sample[], number>();
  let at = 0;
  for (const p of parts) {
    offsets.set(p.indices, at);
    at += p.indices.length;
  }
  const offsetOf = (part: readonly Sample[]): number => {
    const direct = offsets.get(part);
    if (direct !== undefined) return direct;
    // a split-up task is a sub-slice of one of `parts`: find its offset by its first sample
    const first = part[0]!;
    for (const [p, off] of offsets) {
      const k = p.indexOf(first);
      if (k >= 0) return off + k;
    }
    return samples.indexOf(first);
  };
  return { parts, offsetOf };
}

/**
 * The probabilities of a predictions reply of `peer` for `part`, checked: a whole number of classes per sample
 * (`classes` of them once known, 0 before) and finite values (E_GRADIENT_SHAPE, E_GRADIENT_NONFINITE name the worker).
 */
export function checkedPredictions(
  peer: Peer,
  part: readonly Sample[],
  r: MessageOf<'predictions'>,
  classes: number,
): { probs: Float32Array; classes: number } {
  const c = r.probs.length / part.length;
  if (r.count !== part.length || !Number.isInteger(c) || c < 1 || (classes && c !== classes)) {
    throw new DptrainError('E_GRADIENT_SHAPE', `worker ${peer.id}: ${r.probs.length} probabilities for ${part.length} samples`);
  }
  for (let i = 0; i < r.probs.length; i++)
    if (!Number.isFinite(r.probs[i]!)) throw new DptrainError('E_GRADIENT_NONFINITE', `worker ${peer.id}: probability ${i} is ${r.probs[i]}`);
  return { probs: r.probs, classes: c };
}
