/**
 * What the exchange lab compares its figures with, and how it projects them: the wire-time lower bound of each
 * topology, the ring-allreduce bound, and a two-parameter fit of measured exchange time against that bound.
 *
 * P is the model's bytes (floats x 4: fp32 gradients and weights); rate is one direction of a full-duplex link
 * (bytes/s); every machine has one link. Per step:
 * - star: the coordinator's link carries N gradients in and N weight copies out (N = all workers): N·P/rate;
 * - hierarchical: one agent per machine, H machines: H·P/rate on the coordinator's link;
 * - sharded (S = H shards, one beside each agent): each link carries 2·P·(S−1)/S each way: 2(H−1)/H·P/rate;
 * - ring all-reduce over the H machines (Horovod's bound): 2(H−1)/H·P/rate.
 */
import type { LabTopology } from './lab-run.js';

/** Bytes/s of one direction of a link of `mbit` Mbit/s. */
export const linkBytesPerSecond = (mbit: number): number => (mbit * 1e6) / 8;

/** Bytes each way on the busiest link per step, for a topology (the numerator of its lower bound). */
export function busiestLinkBytes(topology: LabTopology, hosts: number, workersPerHost: number, modelBytes: number): number {
  if (topology === 'star') return hosts * workersPerHost * modelBytes;
  if (topology === 'hierarchical') return hosts * modelBytes;
  return (2 * (hosts - 1) * modelBytes) / hosts;
}

/** Lower bound of a topology's step exchange, in ms: its busiest link's bytes each way at the link's rate. */
export function lowerBoundMs(topology: LabTopology, hosts: number, workersPerHost: number, modelBytes: number, linkMbit: number): number {
  return (1000 * busiestLinkBytes(topology, hosts, workersPerHost, modelBytes)) / linkBytesPerSecond(linkMbit);
}

/** Ring all-reduce over `hosts` machines with one link each, in ms: 2(H−1)/H·P/rate. */
export function ringBoundMs(hosts: number, modelBytes: number, linkMbit: number): number {
  return (1000 * 2 * (hosts - 1) * modelBytes) / hosts / linkBytesPerSecond(linkMbit);
}

/** exchangeMs ≈ slope · lowerBoundMs + overheadMs, fitted per topology. */
export interface ExchangeFit {
  topology: LabTopology;
  /** Measured time per ms of the bound (1 = the wire at full rate; it also absorbs per-byte CPU costs). */
  slope: number;
  /** Fixed cost per step, ms (latency, the optimizer step, scheduling), at least 0. */
  overheadMs: number;
  /** Measurements it was fitted to. */
  points: number;
}

/** Least-squares fit of `ms = slope · bound + overhead` (overhead ≥ 0; with one point, or no spread, overhead 0). */
export function fitExchange(topology: LabTopology, points: { boundMs: number; ms: number }[]): ExchangeFit | undefined {
  if (points.length === 0) return undefined;
  const n = points.length;
  const mx = points.reduce((s, p) => s + p.boundMs, 0) / n;
  const my = points.reduce((s, p) => s + p.ms, 0) / n;
  const sxx = points.reduce((s, p) => s + (p.boundMs - mx) ** 2, 0);
  const sxy = points.reduce((s, p) => s + (p.boundMs - mx) * (p.ms - my), 0);
  let slope = sxx > 0 ? sxy / sxx : my / mx;
  let overheadMs = my - slope * mx;
  if (!(sxx > 0) || overheadMs < 0) {
    // through the origin
    slope = points.reduce((s, p) => s + p.boundMs * p.ms, 0) / points.reduce((s, p) => s + p.boundMs ** 2, 0);
    overheadMs = 0;
  }
  return { topology, slope, overheadMs, points: n };
}

/** One cell of the projection. */
export interface ProjectionRow {
  topology: LabTopology;
  /** Workers (GPUs) in all. */
  workers: number;
  /** Machines (workers / GPUs per machine). */
  hosts: number;
  linkGbit: number;
  exchangeMs: number;
  /** computeMs / (computeMs + exchangeMs): the share of one worker's throughput each worker keeps. */
  efficiency: number;
}

/** Options of {@link projectExchange}. */
export interface ProjectionOptions {
  /** Total worker counts. Default [8, 32, 128]. */
  workers?: number[];
  /** Link speeds, Gbit/s. Default [10, 25, 100]. */
  linkGbit?: number[];
  /** Workers (GPUs) per machine. Default 4. */
  workersPerHost?: number;
  /** Compute time of one step on one worker, ms (no overlap with the exchange). Default 30. */
  computeMs?: number;
  /** Bytes of the model (floats x 4). Required. */
  modelBytes: number;
}

/** The fitted model applied to larger clusters and faster links (see the assumptions in docs/cluster.md). */
export function projectExchange(fits: ExchangeFit[], options: ProjectionOptions): ProjectionRow[] {
  const workers = options.workers ?? [8, 32, 128];
  const speeds = options.linkGbit ?? [10, 25, 100];
  const perHost = options.workersPerHost ?? 4;
  const computeMs = options.computeMs ?? 30;
  const rows: ProjectionRow[] = [];
  for (const fit of fits) {
    for (const n of workers) {
      const hosts = Math.max(1, Math.round(n / perHost));
      for (const gbit of speeds) {
        const exchangeMs = fit.slope * lowerBoundMs(fit.topology, hosts, n / hosts, options.modelBytes, gbit * 1000) + fit.overheadMs;
        rows.push({ topology: fit.topology, workers: n, hosts, linkGbit: gbit, exchangeMs, efficiency: computeMs / (computeMs + exchangeMs) });
      }
    }
  }
  return rows;
}
