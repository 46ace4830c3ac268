import { microBatchCount, weightedTreeNodeSlices, type Sample } from '@dptrain/core';
import type { Share } from './distribute.js';
import type { Peer } from './peer.js';
import { slicePeers, type ThroughputMeter } from './throughput.js';

/** How one step's batch is cut into shares, and how a lost, late or refused share is cut again. */
export interface StepShares {
  /** The samples [start, end) of the batch (a tree node) cut among `peers` (none: one share for whoever is free). */
  cut(peers: readonly Peer[], start: number, end: number): Share[];
  /** A share's samples (a tree node) cut again among `survivors`. */
  recut(part: readonly Sample[], survivors: readonly Peer[]): Share[];
  /** Where a share's samples start in the batch. */
  startOf(part: readonly Sample[]): number;
}

/**
 * The shares of a step over `samples` with micro-batch `micro`: in proportion to each peer's measured throughput
 * (`meter`), within its batch capacity, as whole nodes of the micro-batch tree (core's `weightedTreeNodeSlices`),
 * one share (and one request) per node. Since every share is a node, the merged mean has the same bits whoever
 * computed which part, and a share cut again the same way among the survivors of a fault keeps them too.
 */
export function stepShares(samples: readonly Sample[], micro: number, meter: ThroughputMeter): StepShares {
  const position = new Map<Sample, number>(samples.map((x, i) => [x, i]));
  const startOf = (part: readonly Sample[]): number => position.get(part[0]!)!;
  const cut = (peers: readonly Peer[], start: number, end: number): Share[] =>
    peers.length === 0
      ? [{ indices: samples.slice(start, end) }]
      : weightedTreeNodeSlices(samples.length, micro, slicePeers(meter, peers), { start, end }).flatMap((ranges, i) =>
          ranges.map((r) => ({ indices: samples.slice(r.start, r.end), owner: peers[i]! })),
        );
  return {
    cut,
    recut: (part, survivors) => cut(survivors, startOf(part), startOf(part) + part.length),
    startOf,
  };
}

/**
 * The warning for a full batch (`batchSize`) with fewer micro-batches than there are workers (some then sit every
 * step out); undefined when all take part. A slow worker may get no share of a step: that is the weights at work,
 * not worth a warning.
 */
export function idleWarning(workers: number, total: number, micro: number, batchSize: number): string | undefined {
  const busy = Math.min(workers, microBatchCount(total, micro));
  if (busy >= workers || total !== batchSize) return undefined;
  return `only ${busy} of ${workers} workers take part in a step: a batch of ${total} has ${busy} micro-batches of ${micro}; use --micro-batch ${Math.max(1, Math.floor(total / workers))} (or a larger --batch-size) to keep them all busy`;
}
