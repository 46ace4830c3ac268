import {
  DptrainError,
  encodeMessage,
  isDptrainError,
  systemClock,
  unpackGradients,
  mergeGradientTree,
  microBatchSlices,
  type RangedGradient,
  type AggregatedGradients,
  type Clock,
  type PhaseName,
  type ProgressTask,
  type Sample,
  type StepContext,
  type StepWorkerStat,
  type TrainingExecutor,
  type WeightSpec,
} from '@dptrain/core';
import { WorkerLostError, type Peer } from './peer.js';
import type { ClusterServer } from './server.js';
import { SampleLedger } from './ledger.js';
import { chunks, contiguousSlices } from './split.js';

export interface ClusterExecutorOptions {
  /** The coordinator's server, already listening. */
  server: ClusterServer;
  /** Training waits while fewer workers are connected (emitting `waiting_for_workers`). Default 1. */
  minWorkers?: number;
  /** Most workers that take part in one step (the rest stand by). Default: all. */
  maxWorkers?: number;
  /** Samples per prediction request. Default 32. */
  predictChunk?: number;
  /** setWeights waits until every worker acknowledged the new weights. Default false (ordering on the socket suffices). */
  ackWeights?: boolean;
  /** A slice that fails on this many workers (worker errors, not losses) fails the step. Default 3. */
  maxSliceFailures?: number;
  /** Ask workers for fp16 gradients (overrides the run config's fp16Gradients). Default: the run config's. */
  fp16?: boolean;
  /**
   * Micro-batch of the averaging tree (see core's gradient-tree): slices are cut on micro-batch boundaries and
   * the workers' means merged along the tree, so 1, 2 or 4 workers give the same bits. Default: the run
   * config's microBatch.
   */
  microBatch?: number;
  /** Clock for timings and events. Default: systemClock. */
  clock?: Clock;
}

interface Task {
  indices: Sample[];
  failures: number;
}

/**
 * TrainingExecutor over the cluster: each global batch is split into contiguous slices, one per live
 * worker, cut on micro-batch boundaries; the workers' mean gradients are merged along core's fixed averaging
 * tree (weighted by sample count), so the result does not depend on which worker answers first. A lost
 * worker's slice is split among the survivors and the step completes; joiners are synced (phase + weights)
 * before their first task.
 */
export class ClusterExecutor implements TrainingExecutor {
  readonly ledger = new SampleLedger();
  private readonly server: ClusterServer;
  private readonly clock: Clock;
  private minWorkers: number;
  private failure: Error | undefined;
  private spec: WeightSpec[] = [];
  private size = 0;
  private closed = false;
  private warnedIdle = false;

  constructor(private readonly opts: ClusterExecutorOptions) {
    this.server = opts.server;
    this.clock = opts.clock ?? systemClock;
    this.minWorkers = Math.max(1, opts.minWorkers ?? 1);
  }

  /**
   * Changes how many workers training waits for (a supervisor lowers it once lost local workers can no longer be
   * replaced). Takes effect at the next wait, within a second.
   */
  setMinWorkers(n: number): void {
    this.minWorkers = Math.max(1, n);
  }

  /** Makes every wait for workers fail with `err` (no worker can ever come back). */
  fail(err: Error): void {
    this.failure = err;
  }

  /** Current trainable spec (empty before the first phase). */
  get weightSpec(): WeightSpec[] {
    return this.spec;
  }

  async beginPhase(phase: PhaseName, weights?: Float32Array): Promise<{ spec: WeightSpec[]; weights: Float32Array }> {
    const s = this.server.state;
    s.phase = phase;
    s.weights = null;
    s.version++;
    for (;;) {
      await this.waitForWorkers(this.minWorkers);
      const leader = this.server.workers[0];
      if (!leader) continue;
      try {
        const r = await leader.request('phase_ready', (id) => ({ type: 'phase', id, phase, weights: weights ?? null, wantWeights: !weights }));
        const spec = r.spec.map((x) => ({ name: x.name, shape: [...x.shape], size: x.size }));
        const size = spec.reduce((a, b) => a + b.size, 0);
        const w = weights ?? r.weights;
        if (!w || w.length !== size) {
          this.server.reject(leader, new DptrainError('E_GRADIENT_SHAPE', `worker ${leader.id}: phase '${phase}' weights of length ${w?.length ?? 0}, spec says ${size}`));
          continue;
        }
        this.spec = spec;
        this.size = size;
        s.weights = w;
        leader.phase = phase;
        leader.version = s.version;
        // switch the others now, in parallel, so that their first step does not pay for it
        await Promise.all(this.server.workers.filter((p) => p !== leader).map((p) => this.sync(p).catch(() => undefined)));
        return { spec, weights: w };
      } catch (err) {
        if (err instanceof WorkerLostError) continue;
        throw err;
      }
    }
  }

  async computeGradients(samples: Sample[], ctx: StepContext): Promise<AggregatedGradients> {
    if (this.size === 0) throw new DptrainError('E_CONFIG', 'computeGradients before beginPhase');
    await this.waitForWorkers(this.minWorkers);
    // Each worker's mean gradient is checked for non-finite values as it arrives (a bad one is rejected: its
    // slice goes to the others and it never counts); once every sample is back, the means are merged along the
    // micro-batch tree, weighted by sample count.
    const total = samples.length;
    const micro = this.opts.microBatch ?? this.server.config.microBatch;
    const position = new Map<Sample, number>(samples.map((x, i) => [x, i]));
    const parts: RangedGradient[] = [];
    const owned = new Set<Float32Array>();
    const stats = new Map<string, StepWorkerStat & { wallMs: number }>();
    const participants = this.participants();
    const slices = microBatchSlices(total, micro, participants.length).map(({ start, end }) => samples.slice(start, end));
    if (slices.length < participants.length && total === this.server.config.batchSize && !this.warnedIdle) {
      this.warnedIdle = true;
      this.server.emit({
        type: 'log',
        time: this.clock.now(),
        level: 'warn',
        message: `only ${slices.length} of ${participants.length} workers take part in a step: a batch of ${total} has ${slices.length} micro-batches of ${micro}; use --micro-batch ${Math.max(1, Math.floor(total / participants.length))} (or a larger --batch-size) to keep them all busy`,
      });
    }
    await this.distribute(
      slices,
      async (peer, part) => {
        await this.sync(peer);
        const inBefore = peer.bytesIn;
        const outBefore = peer.bytesOut;
        const t0 = this.clock.now();
        const r = await peer.request('gradients', (id) => ({
          type: 'step',
          id,
          phase: ctx.phase,
          epoch: ctx.epoch,
          step: ctx.step,
          indices: Uint32Array.from(part, (x) => x.index),
          ...(this.opts.fp16 !== undefined ? { fp16: this.opts.fp16 } : {}),
        }));
        if (r.count !== part.length) throw new DptrainError('E_GRADIENT_SHAPE', `worker ${peer.id}: gradients over ${r.count} samples, asked for ${part.length}`);
        if (r.correct > r.count) throw new DptrainError('E_PROTOCOL_SCHEMA', `worker ${peer.id}: ${r.correct} correct of ${r.count}`);
        const g = unpackGradients(r, this.size, peer.id);
        owned.add(g); // decoded from the frame (or from fp16) for this step only: the merge may write into it
        return { r, g, wallMs: this.clock.now() - t0, bytesIn: peer.bytesIn - inBefore, bytesOut: peer.bytesOut - outBefore };
      },
      (peer, part, { r, g, wallMs, bytesIn, bytesOut }) => {
        const start = position.get(part[0]!)!;
        parts.push({ gradients: g, loss: r.loss, count: r.count, correct: r.correct, start, end: start + part.length });
        this.ledger.add(ctx.phase, ctx.epoch, part.map((x) => x.index));
        const st = stats.get(peer.id) ?? { id: peer.id, samples: 0, computeMs: 0, bytesIn: 0, bytesOut: 0, wallMs: 0 };
        st.samples += r.count;
        st.computeMs += r.computeMs;
        st.bytesIn += bytesIn;
        st.bytesOut += bytesOut;
        st.wallMs += wallMs;
        stats.set(peer.id, st);
      },
      participants,
    );
    // every slice (and every share of a lost worker's slice) came back: each sample exactly once
    const merged = parts.length > 0 ? mergeGradientTree(parts, total, micro, owned) : { gradients: new Float32Array(this.size), loss: 0, count: 0, correct: 0 };
    const workers = [...stats.values()];
    let straggler: string | undefined;
    let slowest = -1;
    for (const w of workers) if (w.wallMs > slowest) [slowest, straggler] = [w.wallMs, w.id];
    this.server.state.step = ctx.step + 1;
    return {
      gradients: merged.gradients,
      loss: merged.loss,
      count: merged.count,
      correct: merged.correct,
      workers: workers.map(({ wallMs: _w, ...rest }) => rest),
      straggler: workers.length > 1 ? straggler : undefined,
    };
  }

  async setWeights(weights: Float32Array): Promise<void> {
    if (weights.length !== this.size) throw new DptrainError('E_GRADIENT_SHAPE', `setWeights: ${weights.length} values, the phase has ${this.size}`);
    const s = this.server.state;
    s.weights = weights;
    s.version++;
    const ack = this.opts.ackWeights ?? false;
    const frame = encodeMessage({ type: 'weights', step: s.version, weights, ack });
    const waits: Promise<unknown>[] = [];
    for (const p of this.server.workers) {
      if (p.phase !== s.phase) continue; // synced before its next task
      if (ack) waits.push(p.request('weights_ack', frame, String(s.version)).catch(() => undefined));
      else p.send(frame);
      p.version = s.version;
    }
    await Promise.all(waits);
  }

  async predict(samples: Sample[], task: ProgressTask): Promise<Float32Array> {
    if (samples.length === 0) return new Float32Array(0);
    await this.waitForWorkers(this.minWorkers);
    // contiguous chunks of one split each
    const groups: Sample[][] = [];
    for (const s of samples) {
      const last = groups[groups.length - 1];
      if (last && last[0]!.split === s.split) last.push(s);
      else groups.push([s]);
    }
    const size = this.opts.predictChunk ?? 32;
    const parts = groups.flatMap((g) => chunks(g, size));
    const offsets = new Map<Sample[], number>();
    let at = 0;
    for (const p of parts) {
      offsets.set(p, at);
      at += p.length;
    }
    let classes = 0;
    let out: Float32Array | undefined;
    let done = 0;
    await this.distribute(
      parts,
      async (peer, part) => {
        await this.sync(peer);
        const r = await peer.request('predictions', (id) => ({ type: 'predict', id, split: part[0]!.split, indices: Uint32Array.from(part, (x) => x.index) }));
        const c = r.probs.length / part.length;
        if (r.count !== part.length || !Number.isInteger(c) || c < 1 || (classes && c !== classes)) {
          throw new DptrainError('E_GRADIENT_SHAPE', `worker ${peer.id}: ${r.probs.length} probabilities for ${part.length} samples`);
        }
        for (let i = 0; i < r.probs.length; i++) if (!Number.isFinite(r.probs[i]!)) throw new DptrainError('E_GRADIENT_NONFINITE', `worker ${peer.id}: probability ${i} is ${r.probs[i]}`);
        return { probs: r.probs, c };
      },
      (_peer, part, { probs, c }) => {
        // a split-up task is a sub-slice of one of `parts`: find its offset by its first sample
        classes ||= c;
        out ??= new Float32Array(samples.length * c);
        out.set(probs, this.offsetOf(part, offsets, samples) * c);
        done += part.length;
        this.server.emit({ type: 'progress', time: this.clock.now(), task, done, total: samples.length });
      },
      this.participants(),
    );
    return out!;
  }

  /** Closes the server; `bye: false` leaves the workers reconnecting (a stopped coordinator that will be restarted). */
  async close(opts: { bye?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.server.close(opts);
  }

  // ---- internals ---------------------------------------------------------------------------

  private offsetOf(part: Sample[], offsets: Map<Sample[], number>, samples: Sample[]): number {
    const direct = offsets.get(part);
    if (direct !== undefined) return direct;
    const first = part[0]!;
    for (const [p, off] of offsets) {
      const k = p.indexOf(first);
      if (k >= 0) return off + k;
    }
    return samples.indexOf(first);
  }

  private participants(): Peer[] {
    const all = this.server.workers;
    return all.slice(0, this.opts.maxWorkers ?? all.length);
  }

  /** Brings a worker to the current phase and weights (joiners, or workers that missed a broadcast). */
  private async sync(peer: Peer): Promise<void> {
    const s = this.server.state;
    if (!s.phase || !s.weights) return;
    if (peer.phase !== s.phase) {
      const r = await peer.request('phase_ready', (id) => ({ type: 'phase', id, phase: s.phase!, weights: s.weights, wantWeights: false }));
      const size = r.spec.reduce((a, b) => a + b.size, 0);
      if (size !== this.size) throw new DptrainError('E_GRADIENT_SHAPE', `worker ${peer.id}: phase '${s.phase}' has ${size} trainable values, expected ${this.size}`);
      peer.phase = s.phase;
      peer.version = s.version;
    } else if (peer.version !== s.version) {
      peer.send({ type: 'weights', step: s.version, weights: s.weights, ack: false });
      peer.version = s.version;
    }
  }

  /** Waits (saying so) until `n` workers are joined. */
  private async waitForWorkers(n: number): Promise<void> {
    let said = -1;
    while (this.server.workers.length < Math.min(n, this.minWorkers)) {
      if (this.failure) throw this.failure;
      if (this.closed) throw new DptrainError('E_TIMEOUT', 'executor closed while waiting for workers');
      const connected = this.server.workers.length;
      if (connected !== said) {
        this.server.emit({ type: 'waiting_for_workers', time: this.clock.now(), connected, required: n });
        said = connected;
      }
      await this.server.waitForJoin(1000);
    }
  }

  /**
   * Runs `tasks` on the workers: initial task i goes to worker i; a free worker takes the next queued task;
   * the task of a lost (or rejected) worker is split among the survivors. Each task is accepted exactly once.
   */
  private async distribute<R>(
    tasks: Sample[][],
    run: (peer: Peer, part: Sample[]) => Promise<R>,
    accept: (peer: Peer, part: Sample[], result: R) => void,
    preferred: Peer[],
  ): Promise<void> {
    const queue: Task[] = tasks.map((indices) => ({ indices, failures: 0 }));
    const inflight = new Map<Peer, Task>();
    let wake: () => void = () => undefined;
    let fatal: Error | undefined;
    const maxFailures = this.opts.maxSliceFailures ?? 3;
    const offJoin = this.server.onWorkerJoined(() => wake());
    try {
      while ((queue.length > 0 || inflight.size > 0) && !fatal) {
        const signal = new Promise<void>((r) => (wake = r));
        const live = this.server.workers;
        const pool = preferred.filter((p) => !p.closed);
        const idle = (pool.length > 0 ? pool : live).filter((p) => !inflight.has(p));
        for (const peer of idle) {
          const task = queue.shift();
          if (!task) break;
          inflight.set(peer, task);
          run(peer, task.indices).then(
            (result) => {
              inflight.delete(peer);
              accept(peer, task.indices, result);
              wake();
            },
            (err: unknown) => {
              inflight.delete(peer);
              if (isDptrainError(err)) this.server.reject(peer, err); // bad reply: drop the worker
              else if (!(err instanceof WorkerLostError)) {
                task.failures++;
                if (task.failures >= maxFailures) fatal = err as Error;
                this.server.drop(peer, `request failed: ${(err as Error).message}`);
              }
              if (peer.closed) preferred = preferred.filter((p) => p !== peer);
              const survivors = this.server.workers.filter((p) => p !== peer);
              const share = contiguousSlices(task.indices, Math.max(1, survivors.length));
              queue.unshift(...share.map((indices) => ({ indices, failures: task.failures })));
              wake();
            },
          );
        }
        if (inflight.size === 0 && queue.length > 0 && this.server.workers.length === 0) {
          await this.waitForWorkers(1);
          continue;
        }
        await signal;
      }
    } finally {
      offJoin();
    }
    if (fatal) throw fatal;
  }
}
