import {
  DptrainError,
  encodeMessage,
  systemClock,
  mergeGradientTree,
  GradientNormGuard,
  type GradientNormGuardOptions,
  type GradientPrecision,
  type AggregatedGradients,
  type MessageOf,
  type Clock,
  type PhaseName,
  type ProgressTask,
  type Sample,
  type StepContext,
  type TrainingExecutor,
  type TrainingUpdate,
  type TrainStepResult,
  type WeightSpec,
  checkStepResult,
  DEFAULT_BUCKET_FLOATS,
} from '@dptrain/core';
import { BucketRelay } from './bucket-relay.js';
import { pipelinedUpdate } from './bucketed-update.js';
import { DeadlineError, WorkerLostError, type Peer } from './peer.js';
import { distribute, survivorsOf, type DistributionContext, type Share } from './distribute.js';
import { RequestDeadlines, type RequestDeadlineOptions, type RequestKind } from './deadlines.js';
import type { ClusterServer } from './server.js';
import { SampleLedger } from './ledger.js';
import { RunSync } from './run-sync.js';
import { acceptedPart, gradientBucketsFor, requestStepPart, stepWorkerStats, type CollectedStep, type StepPart } from './step-reply.js';
import { GradientBuffers } from './gradient-assembly.js';
import { idleWarning, stepShares } from './step-shares.js';
import { StreamedMerge, type GradientStream } from './streamed-merge.js';
import { checkedPredictions, predictionChunks } from './prediction-chunks.js';
import { ThroughputMeter, throughputPeer, type ThroughputMeterOptions } from './throughput.js';
import { WorkerQuorum } from './worker-quorum.js';

export interface ClusterExecutorOptions {
  /** The coordinator's server, already listening. */
  server: ClusterServer;
  /** Training waits while fewer workers are connected (emitting `waiting_for_workers`). Default 1. */
  minWorkers?: number;
  /**
   * The run's first wait for workers lasts until this many are joined (`--start-workers`); later waits need only
   * `minWorkers`, so the run goes on after losses (Horovod's `-np` beside `--min-np`). Default: minWorkers.
   */
  startWorkers?: number;
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
  /** How each worker's measured throughput is smoothed (its share of a step follows it). Default: THROUGHPUT_METER_DEFAULTS. */
  throughput?: ThroughputMeterOptions;
}

/**
 * TrainingExecutor over the cluster: each global batch is cut into shares, one per live worker, in proportion
 * to each worker's measured throughput and within its batch capacity, made of nodes of core's fixed averaging
 * tree (step-shares.ts, one request per node); the workers' mean gradients are merged along that tree (weighted
 * by sample count), so the result does not depend on who computed which part. A lost, late (past its deadline)
 * or refused (gradient norm) worker's part is re-cut the same way among the survivors and the step completes
 * with the same bits; joiners are synced (phase + weights) before their first task. The executor owns the run
 * and sync state (`RunSync`): the server only reads it, for the welcome and `GET /status`.
 */
export class ClusterExecutor implements TrainingExecutor {
  readonly ledger = new SampleLedger();
  protected readonly server: ClusterServer;
  protected readonly clock: Clock;
  /** How many workers training waits for. */
  private readonly quorum: WorkerQuorum;
  protected size = 0;
  private closed = false;
  private warnedIdle = false;
  private readonly normGuard: GradientNormGuard;
  readonly deadlines: RequestDeadlines;
  /** Each worker's smoothed samples per second: the weight of its share. */
  readonly throughput: ThroughputMeter;
  /** The run's step, phase, weights and version, and what each worker holds. */
  protected readonly run: RunSync;
  /** The memory of the gradients assembled from buckets, reused from step to step. */
  private readonly gradientBuffers = new GradientBuffers();
  /** An agent's relay of the pipelined weights buckets (made on the first). */
  private relay: BucketRelay | undefined;
  private readonly offLost: () => void;
  private readonly offJoined: () => void;

  constructor(private readonly opts: ClusterExecutorOptions) {
    this.server = opts.server;
    this.clock = opts.clock ?? systemClock;
    this.quorum = new WorkerQuorum(this.server, this.clock, opts.minWorkers, opts.startWorkers);
    this.normGuard = new GradientNormGuard(opts.gradientNorm);
    this.deadlines = new RequestDeadlines(opts.deadlines);
    this.throughput = new ThroughputMeter(opts.throughput);
    // versions go on from those of an executor that had this server before (its workers keep the newest they saw)
    this.run = new RunSync(this.server.state.version);
    this.server.useRunState(this.run.state);
    this.offJoined = this.server.onWorkerJoined((peer) => this.run.welcomed(peer));
    this.offLost = this.server.onWorkerLost((peer) => {
      this.deadlines.forget(peer.id);
      this.throughput.forget(peer.id);
    });
  }

  /**
   * Changes how many workers training waits for (a supervisor lowers it once lost local workers can no longer be
   * replaced). Takes effect at the next wait, within a second.
   */
  setMinWorkers(n: number): void {
    this.quorum.setMin(n);
  }

  /** A request's deadline for `peer`: a GPU that runs through the PTX JIT gets the long first-request one. */
  private deadlineFor(peer: Peer, kind: RequestKind, phase: string, samples: number): number {
    if (peer.info?.gpu?.tfjsNodeGpu === 'ptx-jit') this.deadlines.markPtxJit(peer.id);
    return this.deadlines.deadlineMs(peer.id, kind, phase, samples);
  }

  /** What `distribute` needs of this executor. */
  private get distribution(): DistributionContext {
    return {
      server: this.server,
      maxFailures: this.opts.maxSliceFailures ?? 3,
      waitForWorkers: (n) => this.quorum.wait(n),
      aborts: (err) => this.abortsStep(err),
    };
  }

  /** Makes every wait for workers fail with `err` (no worker can ever come back). */
  fail(err: Error): void {
    this.quorum.fail(err);
  }

  /** Joined, live workers now. */
  get workerCount(): number {
    return this.server.workers.length;
  }

  async beginPhase(phase: PhaseName, weights?: Float32Array): Promise<{ spec: WeightSpec[]; weights: Float32Array }> {
    this.run.beginPhase(phase);
    for (;;) {
      await this.quorum.wait();
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
        this.run.setPhaseWeights(w);
        this.run.synced(leader);
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
   * message carries, for a slice it treats as a whole batch), which travels in every step message. With `stream` (an
   * agent's upstream link) the merged mean goes out bucket by bucket as the workers' buckets come in
   * (streamed-merge.ts), and the result's gradient is empty.
   */
  async computeGradients(
    samples: Sample[],
    ctx: StepContext,
    microBatch = this.server.config.microBatch,
    stream?: GradientStream,
  ): Promise<AggregatedGradients> {
    const step = await this.collectParts(samples, ctx, microBatch, stream);
    for (const p of step.accepted) this.ledger.add(ctx.phase, ctx.epoch, p.indices, ctx.step);
    // every slice (and every share of a lost worker's slice) came back and was accepted: each sample exactly once
    const parts = stream ? step.accepted.map((p) => ({ ...p, gradients: new Float32Array(0) })) : step.accepted; // streamed: the figures only
    const merged =
      step.accepted.length > 0
        ? mergeGradientTree(parts, step.total, step.micro, step.owned)
        : { gradients: new Float32Array(this.size), loss: 0, count: 0, correct: 0 };
    this.run.stepDone(ctx.step);
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
  protected async collectParts(
    samples: Sample[],
    ctx: StepContext,
    microBatch = this.server.config.microBatch,
    stream?: GradientStream,
  ): Promise<CollectedStep> {
    if (this.size === 0) throw new DptrainError('E_CONFIG', 'computeGradients before beginPhase');
    await this.quorum.wait();
    // Slices, and the re-cut shares of lost, late or refused workers, are nodes of the micro-batch tree, so the
    // merged mean has the same bits whoever computed which part. Each gradient is checked as it arrives (length,
    // count, finite values: a bad one is rejected and never counts), then against the norm bound once the step's
    // parts are in; refused parts are redone. Only accepted parts are merged and counted in the ledger.
    const total = samples.length;
    const micro = microBatch;
    const owned = new Set<Float32Array>();
    const participants = this.participants();
    const shares = stepShares(samples, micro, this.throughput);
    const merge = stream ? new StreamedMerge(total, micro, this.size, stream) : undefined;
    this.gradientBuffers.nextStep();
    this.warnIfIdle(participants.length, total, micro);
    const accepted: StepPart[] = [];
    const recomputed = new Set<string>();
    let pending: Share[] = shares.cut(participants, 0, total);
    while (pending.length > 0) {
      const fresh: StepPart[] = [];
      await distribute(
        this.distribution,
        pending,
        async (peer, part) => {
          await this.sync(peer);
          const start = shares.startOf(part);
          const q = await requestStepPart(peer, {
            ctx,
            part,
            microBatch: micro,
            ...(this.opts.gradientPrecision !== undefined ? { precision: this.opts.gradientPrecision } : {}),
            extras: this.stepRequestExtras(peer),
            deadlineMs: this.deadlineFor(peer, 'step', ctx.phase, part.length),
            size: this.size,
            bucketFloats: gradientBucketsFor(peer, !!stream, stream?.bucketFloats ?? this.opts.bucketFloats ?? DEFAULT_BUCKET_FLOATS),
            buffers: this.gradientBuffers,
            ...(merge ? { streamed: merge.part(start, start + part.length) } : {}),
            clock: this.clock,
          });
          if (q.decoded) owned.add(q.gradients); // decoded from the frame (or from fp16) for this step only: the merge may write into it
          this.deadlines.record(peer.id, 'step', ctx.phase, part.length, q.wallMs);
          this.throughput.record(throughputPeer(peer), q.reply.count, q.reply.computeMs > 0 ? q.reply.computeMs : q.wallMs);
          return q;
        },
        (peer, part, q) => fresh.push(acceptedPart(peer, part, shares.startOf(part), q)),
        participants,
        shares.recut,
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
        p.streamed?.refuse(why);
        const part = samples.slice(p.start, p.end);
        const survivors = survivorsOf(participants, p.peer, this.server.workers);
        if (survivors.length > 0) {
          // refused: the worker is dropped (logged as a rejected frame with the reason), its share redone by the others
          this.server.reject(p.peer, new DptrainError('E_GRADIENT_NORM', `${what}; its share is redone by the others`));
          pending.push(...shares.recut(part, survivors));
        } else if (!recomputed.has(`${p.start}:${p.end}`)) {
          recomputed.add(`${p.start}:${p.end}`);
          this.server.emit({ type: 'log', time: this.clock.now(), level: 'warn', message: `gradient refused, recomputing once (no other worker): ${what}` });
          pending.push({ indices: part, owner: p.peer });
        } else {
          throw new DptrainError(
            'E_GRADIENT_NORM',
            `${what}; refused again after recomputing it, and no other worker can redo it: stopping rather than training on it (raise --max-grad-norm-ratio / --max-grad-norm if this gradient is legitimate)`,
          );
        }
      }
    }
    this.normGuard.accept(accepted.map((p) => p.norm));
    if (merge && !merge.done) throw new DptrainError('E_INTERNAL', `step ${ctx.step}: its accepted parts are in, but not every merged bucket was sent`);
    return { accepted, ...stepWorkerStats(accepted), owned, total, micro };
  }

  /** Warns once when a full batch has fewer micro-batches than there are workers (idleWarning, step-shares.ts). */
  private warnIfIdle(workers: number, total: number, micro: number): void {
    const message = this.warnedIdle ? undefined : idleWarning(workers, total, micro, this.server.config.batchSize);
    if (message === undefined) return;
    this.warnedIdle = true;
    this.server.emit({ type: 'log', time: this.clock.now(), level: 'warn', message });
  }

  /**
   * One training step with the update pipelined into the broadcast (bucketed-update.ts): the gradients are
   * gathered, checked and merged as by computeGradients (the norm bound and --clip-norm need the whole
   * gradient, so the update starts once every part is in and accepted), then each bucket is updated and sent.
   */
  async trainStep(samples: Sample[], ctx: StepContext, update: TrainingUpdate): Promise<TrainStepResult> {
    const { gradients, ...rest } = await this.computeGradients(samples, ctx);
    checkStepResult(gradients.length, rest.loss, update.weights.length, ctx.step);
    await pipelinedUpdate(this.server, this.run, gradients, update, {
      bucketFloats: this.opts.bucketFloats ?? DEFAULT_BUCKET_FLOATS,
      ack: this.opts.ackWeights ?? false,
      ackDeadlineMs: this.deadlines.options.firstStepTimeoutMs,
    });
    return rest;
  }

  /** An agent's side: forwards one bucket of the coordinator's pipelined update to the local workers (bucket-relay.ts). */
  forwardWeightsBucket(msg: MessageOf<'weights_bucket'>, frame: Buffer[]): Promise<void> {
    this.relay ??= new BucketRelay(this.server, this.run, () => this.deadlines.options.firstStepTimeoutMs);
    return this.relay.forward(msg, frame);
  }

  async setWeights(weights: Float32Array): Promise<void> {
    if (weights.length !== this.size) throw new DptrainError('E_GRADIENT_SHAPE', `setWeights: ${weights.length} values, the phase has ${this.size}`);
    const version = this.run.state.version + 1;
    const ack = this.opts.ackWeights ?? false;
    await this.broadcastWeights(weights, version, encodeMessage({ type: 'weights', version, weights, ack }), ack);
  }

  /**
   * Makes `weights` (version `version`) the current weights and sends `frame`, a `weights` message of them, as it
   * is to every worker of the phase (an agent forwards the frame it received this way, not re-encoded); with `ack`
   * (the frame asks for one), resolves once each has acknowledged. Workers of another phase are synced later.
   */
  async broadcastWeights(weights: Float32Array, version: number, frame: Buffer | Buffer[], ack: boolean): Promise<void> {
    if (weights.length !== this.size) throw new DptrainError('E_GRADIENT_SHAPE', `weights: ${weights.length} values, the phase has ${this.size}`);
    this.run.setWeights(weights, version);
    const waits: Promise<unknown>[] = [];
    for (const p of this.server.workers) {
      if (!this.run.inPhase(p)) continue; // synced before its next task
      if (ack) {
        waits.push(
          p.request('weights_ack', frame, String(version), this.deadlines.options.firstStepTimeoutMs).catch((err: unknown) => {
            if (err instanceof DeadlineError) this.server.drop(p, `deadline: ${err.message}`);
          }),
        );
      } else p.send(frame);
      this.run.synced(p);
    }
    await Promise.all(waits);
  }

  /** Probabilities of `samples`, in chunks of `chunk` (default `predictChunk`) spread over the workers. */
  async predict(samples: Sample[], task: ProgressTask, chunk = this.opts.predictChunk ?? 32): Promise<Float32Array> {
    if (samples.length === 0) return new Float32Array(0);
    await this.quorum.wait();
    const { parts, offsetOf } = predictionChunks(samples, chunk);
    let classes = 0;
    let out: Float32Array | undefined;
    let done = 0;
    await distribute(
      this.distribution,
      parts,
      async (peer, part) => {
        await this.sync(peer);
        // measured per split: test images are not in the feature cache that makes validation fast
        const phase = `${this.run.state.phase ?? ''}/${part[0]!.split}`;
        const t0 = this.clock.now();
        const deadline = this.deadlineFor(peer, 'predict', phase, part.length);
        const r = await peer.request(
          'predictions',
          (id) => ({ type: 'predict', id, split: part[0]!.split, indices: Uint32Array.from(part, (x) => x.index) }),
          undefined,
          deadline,
        );
        this.deadlines.record(peer.id, 'predict', phase, part.length, this.clock.now() - t0);
        return checkedPredictions(peer, part, r, classes);
      },
      (_peer, part, { probs, classes: c }) => {
        classes ||= c;
        out ??= new Float32Array(samples.length * c);
        out.set(probs, offsetOf(part) * c);
        done += part.length;
        this.server.emit({ type: 'progress', time: this.clock.now(), task, done, total: samples.length });
      },
      this.participants(),
      // a lost worker's chunk goes whole to another worker: each image's probabilities come from one call
      (part) => [{ indices: part }],
    );
    return out!;
  }

  /** Closes the server; `bye: false` leaves the workers reconnecting (a stopped coordinator that will be restarted). */
  async close(opts: { bye?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.quorum.close();
    this.offLost();
    this.offJoined();
    await this.server.close(opts);
  }

  // ---- internals ---------------------------------------------------------------------------

  private participants(): Peer[] {
    const all = this.server.workers;
    return all.slice(0, this.opts.maxWorkers ?? all.length);
  }

  /** Brings a worker to the current phase and weights (joiners, or workers that missed a broadcast). */
  protected async sync(peer: Peer): Promise<void> {
    const s = this.run.state;
    if (!s.phase || !s.weights) return;
    if (!this.run.inPhase(peer)) {
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
      this.run.synced(peer);
    } else if (!this.run.upToDate(peer)) {
      peer.send({ type: 'weights', version: s.version, weights: s.weights, ack: false });
      this.run.synced(peer);
    }
  }

  /** Runs a request and records how long `peer` took for it. */
  private async timed<T>(peer: Peer, kind: RequestKind, samples: number, request: () => Promise<T>): Promise<T> {
    const t0 = this.clock.now();
    const r = await request();
    this.deadlines.record(peer.id, kind, this.run.state.phase ?? '', samples, this.clock.now() - t0);
    return r;
  }
}
