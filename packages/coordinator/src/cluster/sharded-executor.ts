import {
  DptrainError,
  clipScale,
  encodeMessage,
  normFromBucketSums,
  joinOptimizerStates,
  mergeGradientTree,
  shardRanges,
  sliceOptimizerState,
  DEFAULT_BUCKET_FLOATS,
  type FlatOptimizer,
  type FloatRange,
  type Outgoing,
  type PhaseName,
  type ProgressTask,
  type Sample,
  type StepContext,
  type TrainingUpdate,
  type TrainStepResult,
  type WeightSpec,
} from '@dptrain/core';
import { ClusterExecutor, type ClusterExecutorOptions } from './executor.js';
import type { StepPart } from './step-reply.js';
import { WorkerLostError, WorkerTaskError, type Peer } from './peer.js';

export interface ShardedExecutorOptions extends ClusterExecutorOptions {
  /**
   * Shards the trainable vector is cut into (`--shards S`), or 'auto': one beside each agent (each agent is asked to
   * start one, `shard_host`), plus any `dptrain shard` that joined; without agents, every shard that joined (at
   * least one).
   */
  shards: number | 'auto';
  /** Floats per bucket; shard ranges start and end on bucket boundaries. Default DEFAULT_BUCKET_FLOATS (1 Mi). */
  bucketFloats?: number;
  /** How long the first step waits for the shards to join before failing with E_NO_SHARDS, in ms. Default 300000. */
  shardWaitMs?: number;
}

interface Layout {
  generation: number;
  size: number;
  shards: { peer: Peer; url: string; range: FloatRange }[];
  /** The optimizer whose state the shards were seeded with (a new one, a phase or a resume, seeds them again). */
  optimizer: FlatOptimizer;
  /** Updates applied so far (the optimizer's iterations at seeding, plus the steps since). */
  iterations: number;
}

/**
 * The coordinator's side of the sharded summation service (`--shards S`): the trainable vector is cut into S
 * ranges on bucket boundaries, one per shard; each step, the workers send range k of their gradient to shard k
 * and only their figures (loss, count, norm) here; shard k merges its range along the micro-batch tree, applies
 * the optimizer to it with its range's state and sends the range's new weights to every worker and here. The
 * coordinator keeps control: slices, faults of workers (as ClusterExecutor), the sanity bound, clipping (from
 * the shards' per-bucket sums of squares), step completion, and checkpoints (syncOptimizerState gathers the
 * shards' state). A lost shard fails the step with E_SHARD_LOST: runCoordinator rolls the run back to its last
 * checkpoint (see docs/cluster.md, "Shards").
 */
export class ShardedClusterExecutor extends ClusterExecutor {
  private layout: Layout | undefined;
  /** The optimizer of a layout that lost a shard: its state is gone with it, only a rollback can go on. */
  private broken: FlatOptimizer | undefined;
  private laidOut = false;
  private inShardedStep = false;
  /** Workers whose current weights came from the shards (the step then names the version to wait for). */
  private readonly fedByShards = new Set<Peer>();
  private readonly mapSent = new WeakMap<Peer, number>();
  private readonly offShardLost: () => void;

  constructor(private readonly shardOpts: ShardedExecutorOptions) {
    super(shardOpts);
    this.offShardLost = this.server.shards.onLost((peer) => {
      if (this.layout?.shards.some((s) => s.peer === peer)) this.invalidate();
    });
  }

  /** The current layout: each shard's id, URL and range (empty before the first sharded step). */
  get shardLayout(): { id: string; url: string; range: FloatRange }[] {
    return this.layout?.shards.map((s) => ({ id: s.peer.id, url: s.url, range: s.range })) ?? [];
  }

  override async beginPhase(phase: PhaseName, weights?: Float32Array): Promise<{ spec: WeightSpec[]; weights: Float32Array }> {
    // the leader hands its replica's weights on when none are given: it must hold the last step's first
    this.flushShardWeights();
    this.layout = undefined;
    this.broken = undefined;
    return super.beginPhase(phase, weights);
  }

  override async predict(samples: Sample[], task: ProgressTask, chunk?: number): Promise<Float32Array> {
    this.flushShardWeights();
    return super.predict(samples, task, chunk);
  }

  /**
   * Workers take the shards' weights only when a step names their version; before anything else (evaluation,
   * prediction, a phase switch) those fed by the shards get the last step's whole weights from here, on the same
   * socket as the request that follows (P per worker, once per evaluation).
   */
  private flushShardWeights(): void {
    const s = this.run.state;
    if (s.weights && this.fedByShards.size > 0) {
      const frame = encodeMessage({ type: 'weights', version: s.version, weights: s.weights, ack: false });
      for (const p of this.fedByShards) if (!p.closed && this.run.inPhase(p)) p.send(frame);
    }
    this.fedByShards.clear();
  }

  override async setWeights(weights: Float32Array): Promise<void> {
    // weights set from outside a step (a callback restoring the best ones): the shards are seeded again next step
    if (this.layout) await this.syncOptimizerState(this.layout.optimizer);
    this.layout = undefined;
    this.fedByShards.clear();
    await super.setWeights(weights);
  }

  override async trainStep(samples: Sample[], ctx: StepContext, update: TrainingUpdate): Promise<TrainStepResult> {
    const layout = await this.ensureLayout(update);
    let step;
    this.inShardedStep = true;
    try {
      step = await this.collectParts(samples, ctx);
    } catch (err) {
      if (layout !== this.layout || this.abortsStep(err)) throw this.lost(ctx, (err as Error).message);
      throw err;
    } finally {
      this.inShardedStep = false;
    }
    if (layout !== this.layout) throw this.lost(ctx, 'during the step');
    const figures = step.accepted.length > 0 ? mergeGradientTree(step.accepted, step.total, step.micro) : { loss: 0, count: 0, correct: 0 };
    if (!Number.isFinite(figures.loss)) throw new DptrainError('E_GRADIENT_NONFINITE', `step ${ctx.step}: loss is ${figures.loss}`);
    // 1. every shard merges its range of the accepted parts; their per-bucket sums of squares give the global norm
    const parts = step.accepted.map((p: StepPart) => ({ sender: p.peer.id, request: p.request, start: p.start, end: p.end }));
    const reduced = await this.onShards(layout, ctx, (peer) =>
      peer.request('shard_reduced', (id) => ({ type: 'shard_reduce', id, n: step.total, microBatch: step.micro, parts }), undefined, this.shardDeadlineMs),
    );
    const refused = reduced.flatMap((r) => r.refused);
    if (refused.length > 0) throw this.lost(ctx, `its gradient ranges of ${refused.slice(0, 8).join(', ')} never arrived or were refused`);
    // the clipping buckets' sums in bucket order: the norm clipByGlobalNorm computes over the whole gradient
    const scale = clipScale(normFromBucketSums(reduced.flatMap((r) => r.sums)), update.clipNorm);
    // 2. every shard updates its range and sends it to every worker (and here)
    const version = this.run.state.version + 1;
    const iterations = layout.iterations + 1;
    const updated = await this.onShards(layout, ctx, (peer) =>
      peer.request(
        'shard_updated',
        (id) => ({ type: 'shard_update', id, version, learningRate: update.optimizer.learningRate, iterations, scale }),
        undefined,
        this.shardDeadlineMs,
      ),
    );
    layout.iterations = iterations;
    updated.forEach((u, k) => {
      const range = layout.shards[k]!.range;
      if (u.weights.length !== range.end - range.start)
        throw new DptrainError(
          'E_GRADIENT_SHAPE',
          `shard ${layout.shards[k]!.peer.id}: ${u.weights.length} weights for its range ${range.start}..${range.end}`,
        );
      update.weights.set(u.weights, range.start);
    });
    this.run.setWeights(update.weights, version);
    const reached = updated.map((u) => new Set(u.sentTo));
    for (const p of this.server.workers) {
      if (reached.every((r) => r.has(p.id)) && this.run.inPhase(p)) {
        this.run.synced(p);
        this.fedByShards.add(p);
      } else this.fedByShards.delete(p); // synced with the whole weights before its next task
    }
    for (const p of step.accepted) this.ledger.add(ctx.phase, ctx.epoch, p.indices, ctx.step);
    this.run.stepDone(ctx.step);
    return { loss: figures.loss, count: figures.count, correct: figures.correct, workers: step.workers, straggler: step.straggler };
  }

  async syncOptimizerState(optimizer: FlatOptimizer): Promise<void> {
    // a checkpoint must not store the state the shards were seeded with when a lost one took the newer state along
    if (this.broken === optimizer) throw this.lost(undefined, 'before it');
    const layout = this.layout;
    if (!layout || layout.optimizer !== optimizer) return;
    const states = await this.onShards(layout, undefined, (peer) =>
      peer.request('shard_state_reply', (id) => ({ type: 'shard_state', id }), undefined, this.shardDeadlineMs),
    );
    const joined = joinOptimizerStates(
      states.map((st, k) => ({
        range: layout.shards[k]!.range,
        state: { kind: st.kind, learningRate: st.learningRate, iterations: st.iterations, slots: st.slots },
      })),
      layout.size,
    );
    optimizer.importState({ ...joined, learningRate: optimizer.learningRate });
  }

  override async close(opts: { bye?: boolean } = {}): Promise<void> {
    this.offShardLost();
    await super.close(opts);
  }

  protected override abortsStep(err: unknown): boolean {
    return err instanceof WorkerTaskError && err.code === 'E_SHARD_LOST';
  }

  protected override stepRequestExtras(peer: Peer): { sharded?: boolean; weightsVersion?: number } | undefined {
    if (!this.inShardedStep) return undefined;
    return { sharded: true, ...(this.fedByShards.has(peer) && this.run.upToDate(peer) ? { weightsVersion: this.run.state.version } : {}) };
  }

  protected override async sync(peer: Peer): Promise<void> {
    await super.sync(peer);
    const layout = this.layout;
    if (!layout || !this.inShardedStep || this.mapSent.get(peer) === layout.generation) return;
    peer.send(this.shardMap(layout));
    this.mapSent.set(peer, layout.generation);
  }

  // ---- internals ---------------------------------------------------------------------------

  private get shardDeadlineMs(): number {
    return this.deadlines.options.firstStepTimeoutMs;
  }

  private shardMap(layout: Layout): Outgoing<'shard_map'> {
    return {
      type: 'shard_map',
      generation: layout.generation,
      size: layout.size,
      shards: layout.shards.map((x) => ({ id: x.peer.id, url: x.url, start: x.range.start, end: x.range.end })),
    };
  }

  /** The layout for this step: the current one, or a new one seeded from `update` (first step, new phase, resume). */
  private async ensureLayout(update: TrainingUpdate): Promise<Layout> {
    const current = this.layout;
    if (current && current.optimizer === update.optimizer && current.size === update.weights.length) return current;
    if (this.broken === update.optimizer) throw this.lost(undefined, 'since the last step');
    if (current) await this.syncOptimizerState(current.optimizer);
    const ready = await this.readyShards();
    const ranges = shardRanges(update.weights.length, ready.length, this.shardOpts.bucketFloats ?? DEFAULT_BUCKET_FLOATS);
    const layout: Layout = {
      generation: this.server.shards.nextGeneration(),
      size: update.weights.length,
      shards: ranges.map((range, k) => ({ peer: ready[k]!.peer, url: ready[k]!.url, range })),
      optimizer: update.optimizer,
      iterations: update.optimizer.iterations,
    };
    if (update.clipNorm > 0 && layout.shards.some((x) => x.range.start % DEFAULT_BUCKET_FLOATS !== 0)) {
      // the norm is summed per clipping bucket; a shard boundary inside one would sum it in another order
      throw new DptrainError(
        'E_CONFIG',
        `--clip-norm with --shards needs shard ranges on the clipping buckets' boundaries (${DEFAULT_BUCKET_FLOATS} floats): use a --shard-bucket-floats that is a multiple of it`,
      );
    }
    const state = update.optimizer.exportState();
    await this.onShards(layout, undefined, (peer, k) => {
      const range = layout.shards[k]!.range;
      return peer.request(
        'shard_seeded',
        (id) => ({
          type: 'shard_seed',
          id,
          generation: layout.generation,
          range,
          size: layout.size,
          weights: update.weights.subarray(range.start, range.end),
          optimizer: sliceOptimizerState(state, range),
        }),
        undefined,
        this.shardDeadlineMs,
      );
    });
    this.layout = layout;
    this.laidOut = true;
    this.fedByShards.clear();
    // every worker learns the shards before its next step (sync sends the map to those that join later)
    const frame = encodeMessage(this.shardMap(layout));
    for (const p of this.server.workers) {
      p.send(frame);
      this.mapSent.set(p, layout.generation);
    }
    this.server.emit({
      type: 'log',
      time: this.clock.now(),
      level: 'info',
      message: `sharded summation: ${layout.shards.length} shard(s) over ${layout.size} trainable values: ${layout.shards.map((x) => `${x.peer.id} [${x.range.start}, ${x.range.end})`).join(', ')}`,
    });
    return layout;
  }

  /**
   * The shards to lay the vector out on: `--shards S` of them the first time (waiting), then those still there;
   * 'auto': one per agent the first time (every agent is asked for one at each new layout), then those still there.
   */
  private async readyShards(): Promise<{ peer: Peer; url: string }[]> {
    const want = this.shardOpts.shards;
    const first = !this.laidOut;
    const agents = want === 'auto' ? this.askAgentsForShards() : 0;
    const need = !first ? 1 : want === 'auto' ? Math.max(1, agents) : want;
    const waitMs = this.shardOpts.shardWaitMs ?? 300_000;
    const t0 = this.clock.now();
    let said = -1;
    while (this.server.shards.ready.length < need) {
      const have = this.server.shards.ready.length;
      if (this.clock.now() - t0 > waitMs)
        throw new DptrainError(
          'E_NO_SHARDS',
          `${have} of ${need} shard(s) joined within ${Math.round(waitMs / 1000)} s (${agents > 0 ? 'the agents start theirs with --shards auto; see their logs' : 'start them with dptrain shard --connect URL'})`,
        );
      if (have !== said) {
        this.server.emit({ type: 'log', time: this.clock.now(), level: 'info', message: `waiting for shards: ${have} of ${need} joined` });
        said = have;
      }
      await this.server.shards.waitForReady(1000);
    }
    const ready = this.server.shards.ready;
    return want === 'auto' ? ready : ready.slice(0, want);
  }

  /** `--shards auto`: asks every agent to start its shard (an agent whose shard is up ignores it); returns how many agents. */
  private askAgentsForShards(): number {
    const agents = this.server.workers.filter((p) => p.info?.localWorkers !== undefined && !p.closed);
    for (const p of agents) p.send({ type: 'shard_host' });
    return agents.length;
  }

  /** Runs `request` on every shard of `layout` at once; a lost or failing shard fails the step with E_SHARD_LOST. */
  private async onShards<T>(layout: Layout, ctx: StepContext | undefined, request: (peer: Peer, k: number) => Promise<T>): Promise<T[]> {
    try {
      return await Promise.all(layout.shards.map((x, k) => request(x.peer, k)));
    } catch (err) {
      if (err instanceof WorkerTaskError && err.code !== 'E_SHARD_LOST' && err.code !== 'E_INTERNAL') {
        // the shard refused the update (E_OPTIMIZER_NONFINITE, a bad shape): the run's error, not a lost shard
        throw new DptrainError(err.code as 'E_OPTIMIZER_NONFINITE', err.message);
      }
      throw this.lost(ctx, err instanceof WorkerLostError ? `shard ${err.workerId}: ${err.reason}` : (err as Error).message);
    }
  }

  /** The layout lost a shard: nothing goes on with its optimizer (rollback). */
  private invalidate(): void {
    if (this.layout) this.broken = this.layout.optimizer;
    this.layout = undefined;
  }

  private lost(ctx: StepContext | undefined, why: string): DptrainError {
    this.invalidate();
    const when = ctx ? `at step ${ctx.step + 1}` : 'between steps';
    return new DptrainError('E_SHARD_LOST', `a shard was lost ${when} (${why}); the run rolls back to its last checkpoint`);
  }
}
