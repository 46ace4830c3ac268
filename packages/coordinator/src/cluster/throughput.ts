/**
 * Each peer's measured throughput, the weight of its share of a step (core's `weightedTreeNodeSlices`): an
 * exponential moving average of the samples per second of its accepted gradient replies, timed by the peer's own
 * compute time (`computeMs` in the reply; the request's wall time when a peer reports none). The wall time would
 * also count the transfer of one gradient per request, which does not grow with the share, and so would make a
 * small share look slow and shrink further. Until a peer has replied, its weight is its seed (`localWorkers` of
 * an agent's join, else 1) times the mean rate per seed of the peers measured so far.
 */

import type { SlicePeer } from '@dptrain/core';
import type { Peer } from './peer.js';

export interface ThroughputMeterOptions {
  /** Weight of the newest reply in the moving average (0 < smoothing <= 1). Default 0.3. */
  smoothing?: number;
}

export const THROUGHPUT_METER_DEFAULTS: Required<ThroughputMeterOptions> = { smoothing: 0.3 };

/** A peer asking for a share: its id and its seed (how many workers stand behind it). */
export interface ThroughputPeer {
  id: string;
  seed: number;
}

export class ThroughputMeter {
  private readonly smoothing: number;
  private readonly rates = new Map<string, { rate: number; seed: number }>();

  constructor(opts: ThroughputMeterOptions = {}) {
    const smoothing = opts.smoothing ?? THROUGHPUT_METER_DEFAULTS.smoothing;
    if (!(smoothing > 0 && smoothing <= 1)) throw new RangeError(`ThroughputMeter: smoothing must be in (0, 1], got ${smoothing}`);
    this.smoothing = smoothing;
  }

  /** Records a reply of `peer`: `samples` computed in `ms` milliseconds (ignored when either is not positive). */
  record(peer: ThroughputPeer, samples: number, ms: number): void {
    if (!(samples > 0) || !(ms > 0) || !Number.isFinite(ms)) return;
    const rate = (samples * 1000) / ms;
    const old = this.rates.get(peer.id);
    this.rates.set(peer.id, { rate: old ? old.rate + this.smoothing * (rate - old.rate) : rate, seed: seedOf(peer) });
  }

  /** The smoothed samples per second of `id`, once it replied. */
  rate(id: string): number | undefined {
    return this.rates.get(id)?.rate;
  }

  /** Forgets a lost peer (a worker that rejoins is measured afresh). */
  forget(id: string): void {
    this.rates.delete(id);
  }

  /** The weight of each peer: its measured rate, or its seed times the measured peers' mean rate per seed. */
  weights(peers: readonly ThroughputPeer[]): number[] {
    let rateSum = 0;
    let seedSum = 0;
    for (const p of peers) {
      const m = this.rates.get(p.id);
      if (m) {
        rateSum += m.rate;
        seedSum += m.seed;
      }
    }
    const perSeed = seedSum > 0 ? rateSum / seedSum : 1;
    return peers.map((p) => this.rates.get(p.id)?.rate ?? seedOf(p) * perSeed);
  }
}

function seedOf(p: ThroughputPeer): number {
  return p.seed > 0 && Number.isFinite(p.seed) ? p.seed : 1;
}

/** The meter's view of a worker: its id and seed (an agent's join says how many local workers stand behind it). */
export function throughputPeer(peer: Peer): ThroughputPeer {
  const info = peer.info as ({ localWorkers?: number } & Peer['info']) | undefined;
  return { id: peer.id, seed: info?.localWorkers ?? 1 };
}

/** Each worker's weight (smoothed throughput, or seed) and capacity, for core's weightedTreeNodeSlices. */
export function slicePeers(meter: ThroughputMeter, peers: readonly Peer[]): SlicePeer[] {
  const weights = meter.weights(peers.map(throughputPeer));
  return peers.map((p, i) => ({ weight: weights[i]!, ...(p.info ? { capacity: p.info.batchCapacity } : {}) }));
}
