import {
  DptrainError,
  encodeMessage,
  isDptrainError,
  systemClock,
  unpackGradients,
  mergeGradientTree,
  treeNodeSlices,
  l2Norm,
  GradientNormGuard,
  type GradientNormGuardOptions,
  type GradientPrecision,
  type RangedGradient,
  type AggregatedGradients,
  type Clock,
  type PhaseName,
  type ProgressTask,
  type Sample,
  type StepContext,
  type StepWorkerStat,
  type TrainingExecutor,
  type TrainingUpdate,
  type TrainStepResult,
  type WeightSpec,
  checkStepResult,
  DEFAULT_BUCKET_FLOATS,
} from '@dptrain/core';
import { pipelinedUpdate } from './bucketed-update.js';
import { DeadlineError, WorkerLostError, type Peer } from './peer.js';
import { RequestDeadlines, type RequestDeadlineOptions, type RequestKind } from './deadlines.js';
import type { ClusterServer } from './server.js';
import { SampleLedger } from './ledger.js';
import { chunks } from './split.js';

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
  /** Precision workers send gradients in (overrides the run config's gradientPrecision / fp16Gradients). Default: the run config's. */
  gradientPrecision?: GradientPrecision;
  /** Clock for timings and events. Default: systemClock. */
  clock?: Clock;
  /**
   * Floats per bucket of the pipelined update (trainStep: each bucket updated and its weights sent at once).
   * Default: core's DEFAULT_BUCKET_FLOATS (1 Mi floats, 4 MiB).
   */
  bucketFloats?: number;
  /**
   * Sanity bound on each worker's gradient norm (`--max-grad-norm-ratio`, `--max-grad-norm`): a gradient above
   * it is refused, its worker dropped and its share redone by the others; a lone worker recomputes the step
   * once, then the run stops with E_GRADIENT_NORM. Default: ratio 100, no absolute bound.
   */
  gradientNorm?: GradientNormGuardOptions;
  /**
   * Request deadlines (`--first-step-timeout`, `--step-timeout-floor`, `--step-timeout-factor`): a request past
   * its deadline is redone by the others and its worker dropped. Default: DEFAULT_REQUEST_DEADLINES.
   */
  deadlines?: RequestDeadlineOptions;
}

/** The accepted parts of a step, and what they cost each worker. */
export interface CollectedStep {
  accepted: StepPart[];
  workers: StepWorkerStat[];
  straggler: string | undefined;
  /** Gradients decoded for this step only (the merge may write into them). */
  owned: Set<Float32Array>;
  total: number;
  micro: number;
}

interface Task {
  indices: Sample[];
  failures: number;
}

/** A worker's accepted answer for the samples [start, end) of a step (sharded steps: an empty gradient). */
export interface StepPart extends RangedGradient {
  peer: Peer;
  /** Id of the step request this part answered (a sharded step's ranges are keyed by it at the shards). */
  request: number;
  indices: number[];
  computeMs: number;
  wallMs: number;
  bytesIn: number;
  bytesOut: number;
  norm: number;
}

/**
 * TrainingExecutor over the cluster: each global batch is split into contiguous slices, one per live
 * worker, that are nodes of core's fixed averaging tree; the workers' mean gradients are merged along that
 * tree (weighted by sample count), so the result does not depend on which worker answers first. A lost, late
 * (past its deadline) or refused (gradient norm) worker's slice is re-cut into tree nodes among the survivors
 * and the step completes with the same bits; joiners are synced (phase + weights) before their first task.
 */
export class ClusterExecutor implements TrainingExecutor {
  readonly ledger = new SampleLedger();
  protected readonly server: ClusterServer;
  protected readonly clock: Clock;
  private minWorkers: number;
  private failure: Error | undefined;
  protected size = 0;
  private closed = false;
  private warnedIdle = false;
  private readonly normGuard: GradientNormGuard;
  readonly deadlines: RequestDeadlines;
  private readonly offLost: () => void;

  constructor(private readonly opts: ClusterExecutorOptions) {
    this.server = opts.server;
    this.clock = opts.clock ?? systemClock;
    this.minWorkers = Math.max(1, opts.minWorkers ?? 1);
    this.normGuard = new GradientNormGuard(opts.gradientNorm);
    this.deadlines = new RequestDeadlines(opts.deadlines);
    this.offLost = this.server.onWorkerLost((peer) => this.deadlines.forget(peer.id));
  }

  /**
   * Changes how many workers training waits for (a supervisor lowers it once lost local workers can no longer be
   * replaced). Takes effect at the next wait, within a second.
   */
  setMinWorkers(n: number): void {
    this.minWorkers = Math.max(1, n);
  }

  /** A request's deadline for `peer`: a GPU that runs through the PTX JIT gets the long first-request one. */
  private deadlineFor(peer: Peer, kind: RequestKind, phase: string, samples: number): number {
    if (peer.info?.gpu?.tfjsNodeGpu === 'ptx-jit') this.deadlines.markPtxJit(peer.id);
    return this.deadlines.deadlineMs(peer.id, kind, phase, samples);
  }

  /** Makes every wait for workers fail with `err` (no worker can ever come back). */
  fail(err: Error): void {
    this.failure = err;
  }

  /** Joined, live workers now. */
  get workerCount(): number {
    return this.server.workers.length;
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
        const r = await this.timed(leader, 'phase', 0, () =>
          leader.request(
            'phase_ready',
            (id) => ({ type: 'phase', id, phase, weights: weights ?? null, wantWeights: !weights }),
            undefined,
            this.deadlineFor(leader, 'phase', phase, 0),
          ),
        );
        const spec = r.spec.map((x) => ({ name: x.name, shape: [...x.shape], size: x.size }));
        const size = spec.reduce((a, b) => a + b.size, 0);
        const w = weights ?? r.weights;
        if (!w || w.length !== size) {
          this.server.reject(
            leader,
            new DptrainError('E_GRADIENT_SHAPE', `worker ${leader.id}: phase '${phase}' weights of length ${w?.length ?? 0}, spec says ${size}`),
          );
          continue;
        }
        this.size = size;
        s.weights = w;
        leader.phase = phase;
        leader.version = s.version;
        // switch the others now, in parallel, so that their first step does not pay for it
        await Promise.all(this.server.workers.filter((p) => p !== leader).map((p) => this.sync(p).catch(() => undefined)));
        return { spec, weights: w };
      } catch (err) {
        if (err instanceof WorkerLostError) continue;
        if (err instanceof DeadlineError) {
          this.server.drop(leader, `deadline: ${err.message}`);
          continue;
        }
        throw err;
      }
    }
  }

  /**
   * The mean gradient of `samples` over the workers. The batch is cut, and the workers' means merged, along the
   * averaging tree of `microBatch` (default: the run config's; an agent passes the one its coordinator's step
   * message carries, for a slice it treats as a whole batch), which travels in every step message.
   */
  async computeGradients(samples: Sample[], ctx: StepContext, microBatch = this.server.config.microBatch): Promise<AggregatedGradients> {
    const step = await this.collectParts(samples, ctx, microBatch);
    for (const p of step.accepted) this.ledger.add(ctx.phase, ctx.epoch, p.indices, ctx.step);
    // every slice (and every share of a lost worker's slice) came back and was accepted: each sample exactly once
    const merged =
      step.accepted.length > 0
        ? mergeGradientTree(step.accepted, step.total, step.micro, step.owned)
        : { gradients: new Float32Array(this.size), loss: 0, count: 0, correct: 0 };
    this.server.state.step = ctx.step + 1;
    return {
      gradients: merged.gradients,
      loss: merged.loss,
      count: merged.count,
      correct: merged.correct,
      workers: step.workers,
      straggler: step.straggler,
    };
  }

  /**
   * What a sharded step adds to each step request (`sharded`, and the weights version the shards sent that
   * worker); the plain executor adds nothing and gets whole gradients back.
   */
  protected stepRequestExtras(_peer: Peer): { sharded?: boolean; weightsVersion?: number } | undefined {
    return undefined;
  }

  /** True for a request failure that ends the whole step at once (none here; a lost shard in a sharded step). */
  protected abortsStep(_err: unknown): boolean {
    return false;
  }

  /**
   * Runs one step's requests and returns the accepted parts (checked, refused ones redone), not yet counted in the
   * ledger nor merged.
   */
  protected async collectParts(samples: Sample[], ctx: StepContext, microBatch = this.server.config.microBatch): Promise<CollectedStep> {
    if (this.size === 0) throw new DptrainError('E_CONFIG', 'computeGradients before beginPhase');
    await this.waitForWorkers(this.minWorkers);
    // Slices, and the re-cut shares of lost, late or refused workers, are nodes of the micro-batch tree, so the
    // merged mean has the same bits whoever computed which part. Each gradient is checked as it arrives (length,
    // count, finite values: a bad one is rejected and never counts), then against the norm bound once the step's
    // parts are in; refused parts are redone. Only accepted parts are merged and counted in the ledger.
    const total = samples.length;
    const micro = microBatch;
    const position = new Map<Sample, number>(samples.map((x, i) => [x, i]));
    const owned = new Set<Float32Array>();
    const participants = this.participants();
    const slices = treeNodeSlices(total, micro, participants.length).map(({ start, end }) => samples.slice(start, end));
    if (slices.length < participants.length && total === this.server.config.batchSize && !this.warnedIdle) {
      this.warnedIdle = true;
      this.server.emit({
        type: 'log',
        time: this.clock.now(),
        level: 'warn',
        message: `only ${slices.length} of ${participants.length} workers take part in a step: a batch of ${total} has ${slices.length} micro-batches of ${micro}; use --micro-batch ${Math.max(1, Math.floor(total / participants.length))} (or a larger --batch-size) to keep them all busy`,
      });
    }
    const recut = (part: Sample[], survivors: number): Sample[][] => {
      const start = position.get(part[0]!)!;
      return treeNodeSlices(total, micro, survivors, start, start + part.length).map((r) => samples.slice(r.start, r.end));
    };
    const accepted: StepPart[] = [];
    const recomputed = new Set<string>();
    let pending = slices;
    while (pending.length > 0) {
      const fresh: StepPart[] = [];
      await this.distribute(
        pending,
        async (peer, part) => {
          await this.sync(peer);
          const inBefore = peer.bytesIn;
          const outBefore = peer.bytesOut;
          const t0 = this.clock.now();
          const deadline = this.deadlineFor(peer, 'step', ctx.phase, part.length);
          const extras = this.stepRequestExtras(peer);
          let request = 0;
          const r = await peer.request(
            'gradients',
            (id) => {
              request = id;
              return {
                type: 'step',
                id,
                phase: ctx.phase,
                epoch: ctx.epoch,
                step: ctx.step,
                indices: Uint32Array.from(part, (x) => x.index),
                microBatch: micro,
                ...(this.opts.gradientPrecision !== undefined ? { precision: this.opts.gradientPrecision } : {}),
                ...extras,
              };
            },
            undefined,
            deadline,
          );
          const wallMs = this.clock.now() - t0;
          if (r.count !== part.length)
            throw new DptrainError('E_GRADIENT_SHAPE', `worker ${peer.id}: gradients over ${r.count} samples, asked for ${part.length}`);
          if (r.correct > r.count) throw new DptrainError('E_PROTOCOL_SCHEMA', `worker ${peer.id}: ${r.correct} correct of ${r.count}`);
          let g: Float32Array;
          let norm: number;
          if (extras?.sharded) {
            // the ranges went to the shards (which check them); here only the figures and the norm
            if (r.gradients.length !== 0 || r.norm === undefined || !Number.isFinite(r.norm))
              throw new DptrainError('E_GRADIENT_SHAPE', `worker ${peer.id}: a sharded step's reply needs an empty gradient and its norm`);
            g = new Float32Array(0);
            norm = r.norm;
          } else {
            g = unpackGradients(r, this.size, peer.id);
            owned.add(g); // decoded from the frame (or from fp16) for this step only: the merge may write into it
            norm = l2Norm(g);
          }
          this.deadlines.record(peer.id, 'step', ctx.phase, part.length, wallMs);
          return { r, g, norm, request, wallMs, bytesIn: peer.bytesIn - inBefore, bytesOut: peer.bytesOut - outBefore };
        },
        (peer, part, { r, g, norm, request, wallMs, bytesIn, bytesOut }) => {
          const start = position.get(part[0]!)!;
          fresh.push({
            gradients: g,
            loss: r.loss,
            count: r.count,
            correct: r.correct,
            start,
            end: start + part.length,
            peer,
            request,
            indices: part.map((x) => x.index),
            computeMs: r.computeMs,
            wallMs,
            bytesIn,
            bytesOut,
            norm,
          });
        },
        participants,
        recut,
      );
      pending = [];
      for (const p of fresh) {
        const others = [...accepted, ...fresh].filter((q) => q !== p).map((q) => q.norm);
        const why = this.normGuard.refusal(p.norm, others);
        if (why === undefined) {
          accepted.push(p);
          continue;
        }
        const what = `worker ${p.peer.id}, step ${ctx.step}, samples ${p.start}..${p.end - 1}: ${why}`;
        const part = samples.slice(p.start, p.end);
        const survivors = this.server.workers.filter((w) => w !== p.peer);
        if (survivors.length > 0) {
          // refused: the worker is dropped (logged as a rejected frame with the reason), its share redone by the others
          this.server.reject(p.peer, new DptrainError('E_GRADIENT_NORM', `${what}; its share is redone by the others`));
          pending.push(...recut(part, survivors.length));
        } else if (!recomputed.has(`${p.start}:${p.end}`)) {
          recomputed.add(`${p.start}:${p.end}`);
          this.server.emit({ type: 'log', time: this.clock.now(), level: 'warn', message: `gradient refused, recomputing once (no other worker): ${what}` });
          pending.push(part);
        } else {
          throw new DptrainError(
            'E_GRADIENT_NORM',
            `${what}; refused again after recomputing it, and no other worker can redo it: stopping rather than training on it (raise --max-grad-norm-ratio / --max-grad-norm if this gradient is legitimate)`,
          );
        }
      }
    }
    this.normGuard.accept(accepted.map((p) => p.norm));
    const stats = new Map<string, StepWorkerStat & { wallMs: number }>();
    for (const p of accepted) {
      const st = stats.get(p.peer.id) ?? { id: p.peer.id, samples: 0, computeMs: 0, bytesIn: 0, bytesOut: 0, wallMs: 0 };
      st.samples += p.count;
      st.computeMs += p.computeMs;
      st.bytesIn += p.bytesIn;
      st.bytesOut += p.bytesOut;
      st.wallMs += p.wallMs;
      stats.set(p.peer.id, st);
    }
    const workers = [...stats.values()];
    let straggler: string | undefined;
    let slowest = -1;
    for (const w of workers) if (w.wallMs > slowest) [slowest, straggler] = [w.wallMs, w.id];
    return {
      accepted,
      workers: workers.map(({ wallMs: _w, ...rest }) => rest),
      straggler: workers.length > 1 ? straggler : undefined,
      owned,
      total,
      micro,
    };
  }

  /**
   * One training step with the update pipelined into the broadcast (bucketed-update.ts): the gradients are
   * gathered, checked and merged as by computeGradients (the norm bound and --clip-norm need the whole
   * gradient, so the update starts once every part is in and accepted), then each bucket is updated and sent.
   */
  async trainStep(samples: Sample[], ctx: StepContext, update: TrainingUpdate): Promise<TrainStepResult> {
    const { gradients, ...rest } = await this.computeGradients(samples, ctx);
    checkStepResult(gradients.length, rest.loss, update.weights.length, ctx.step);
    await pipelinedUpdate(this.server, gradients, update, {
      bucketFloats: this.opts.bucketFloats ?? DEFAULT_BUCKET_FLOATS,
      ack: this.opts.ackWeights ?? false,
      ackDeadlineMs: this.deadlines.options.firstStepTimeoutMs,
    });
    return rest;
  }

  async setWeights(weights: Float32Array): Promise<void> {
    if (weights.length !== this.size) throw new DptrainError('E_GRADIENT_SHAPE', `setWeights: ${weights.length} values, the phase has ${this.size}`);
    const s = this.server.state;
    const ack = this.opts.ackWeights ?? false;
    await this.broadcastWeights(weights, s.version + 1, encodeMessage({ type: 'weights', version: s.version + 1, weights, ack }), ack);
  }

  /**
   * Makes `weights` (version `version`) the current weights and sends `frame`, a `weights` message of them, as it
   * is to every worker of the phase (an agent forwards the frame it received this way, not re-encoded); with `ack`
   * (the frame asks for one), resolves once each has acknowledged. Workers of another phase are synced later.
   */
  async broadcastWeights(weights: Float32Array, version: number, frame: Buffer | Buffer[], ack: boolean): Promise<void> {
    if (weights.length !== this.size) throw new DptrainError('E_GRADIENT_SHAPE', `weights: ${weights.length} values, the phase has ${this.size}`);
    const s = this.server.state;
    s.weights = weights;
    s.version = version;
    const waits: Promise<unknown>[] = [];
    for (const p of this.server.workers) {
      if (p.phase !== s.phase) continue; // synced before its next task
      if (ack) {
        waits.push(
          p.request('weights_ack', frame, String(version), this.deadlines.options.firstStepTimeoutMs).catch((err: unknown) => {
            if (err instanceof DeadlineError) this.server.drop(p, `deadline: ${err.message}`);
          }),
        );
      } else p.send(frame);
      p.version = version;
    }
    await Promise.all(waits);
  }

  /** Probabilities of `samples`, in chunks of `chunk` (default `predictChunk`) spread over the workers. */
  async predict(samples: Sample[], task: ProgressTask, chunk = this.opts.predictChunk ?? 32): Promise<Float32Array> {
    if (samples.length === 0) return new Float32Array(0);
    await this.waitForWorkers(this.minWorkers);
    // contiguous chunks of one split each
    const groups: Sample[][] = [];
    for (const s of samples) {
      const last = groups[groups.length - 1];
      if (last && last[0]!.split === s.split) last.push(s);
      else groups.push([s]);
    }
    const parts = groups.flatMap((g) => chunks(g, Math.max(1, chunk)));
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
        // measured per split: test images are not in the feature cache that makes validation fast
        const phase = `${this.server.state.phase ?? ''}/${part[0]!.split}`;
        const t0 = this.clock.now();
        const deadline = this.deadlineFor(peer, 'predict', phase, part.length);
        const r = await peer.request(
          'predictions',
          (id) => ({ type: 'predict', id, split: part[0]!.split, indices: Uint32Array.from(part, (x) => x.index) }),
          undefined,
          deadline,
        );
        this.deadlines.record(peer.id, 'predict', phase, part.length, this.clock.now() - t0);
        const c = r.probs.length / part.length;
        if (r.count !== part.length || !Number.isInteger(c) || c < 1 || (classes && c !== classes)) {
          throw new DptrainError('E_GRADIENT_SHAPE', `worker ${peer.id}: ${r.probs.length} probabilities for ${part.length} samples`);
        }
        for (let i = 0; i < r.probs.length; i++)
          if (!Number.isFinite(r.probs[i]!)) throw new DptrainError('E_GRADIENT_NONFINITE', `worker ${peer.id}: probability ${i} is ${r.probs[i]}`);
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
      // a lost worker's chunk goes whole to another worker: each image's probabilities come from one call
      (part) => [part],
    );
    return out!;
  }

  /** Closes the server; `bye: false` leaves the workers reconnecting (a stopped coordinator that will be restarted). */
  async close(opts: { bye?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.offLost();
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
  protected async sync(peer: Peer): Promise<void> {
    const s = this.server.state;
    if (!s.phase || !s.weights) return;
    if (peer.phase !== s.phase) {
      const r = await this.timed(peer, 'phase', 0, () =>
        peer.request(
          'phase_ready',
          (id) => ({ type: 'phase', id, phase: s.phase!, weights: s.weights, wantWeights: false }),
          undefined,
          this.deadlineFor(peer, 'phase', s.phase!, 0),
        ),
      );
      const size = r.spec.reduce((a, b) => a + b.size, 0);
      if (size !== this.size)
        throw new DptrainError('E_GRADIENT_SHAPE', `worker ${peer.id}: phase '${s.phase}' has ${size} trainable values, expected ${this.size}`);
      peer.phase = s.phase;
      peer.version = s.version;
    } else if (peer.version !== s.version) {
      peer.send({ type: 'weights', version: s.version, weights: s.weights, ack: false });
      peer.version = s.version;
    }
  }

  /** Runs a request and records how long `peer` took for it. */
  private async timed<T>(peer: Peer, kind: RequestKind, samples: number, request: () => Promise<T>): Promise<T> {
    const t0 = this.clock.now();
    const r = await request();
    this.deadlines.record(peer.id, kind, this.server.state.phase ?? '', samples, this.clock.now() - t0);
    return r;
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
   * the task of a lost, late (past its deadline) or rejected worker is re-cut with `recut` among the
   * survivors. Each task is accepted exactly once: a late worker is dropped, so its answer never arrives.
   */
  private async distribute<R>(
    tasks: Sample[][],
    run: (peer: Peer, part: Sample[]) => Promise<R>,
    accept: (peer: Peer, part: Sample[], result: R) => void,
    preferred: Peer[],
    recut: (part: Sample[], survivors: number) => Sample[][],
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
              if (this.abortsStep(err)) {
                // the step cannot complete as laid out (a lost shard): stop it, the worker did nothing wrong
                fatal = err as Error;
                wake();
                return;
              }
              if (err instanceof DeadlineError)
                this.server.drop(peer, `deadline: ${err.message}`); // late: redone by the others
              else if (isDptrainError(err))
                this.server.reject(peer, err); // bad reply: drop the worker
              else if (!(err instanceof WorkerLostError)) {
                task.failures++;
                if (task.failures >= maxFailures) fatal = err as Error;
                this.server.drop(peer, `request failed: ${(err as Error).message}`);
              }
              if (peer.closed) preferred = preferred.filter((p) => p !== peer);
              const survivors = this.server.workers.filter((p) => p !== peer);
              const share = recut(task.indices, Math.max(1, survivors.length));
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
