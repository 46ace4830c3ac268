import * as tf from '@tensorflow/tfjs';
import {
  computeTreeGradients,
  DptrainError,
  joinDatasetIdentity,
  loadDataset,
  packGradients,
  type BackendInfo,
  type Dataset,
  type GradientResult,
  type MessageOf,
  type Outgoing,
  type Replica,
  type RunConfig,
  type Sample,
  wireGradientPrecision,
  workerPrecision,
} from '@dptrain/core';
import { runUpstream, workerLog, type JoinFields, type MessageHandlers, type UpstreamOptions, type WorkerHandle } from './upstream.js';
import { blockStepForTest, sendBucketsSlowlyForTest, slowStepForTest } from './test-hooks.js';
import type { GradientOut } from './gradient-stream.js';
import { WeightsAssembly } from './weights-assembly.js';

/** Defaults of {@link WorkerOptions} that are the worker's own (the link's are UPSTREAM_DEFAULTS). */
export const WORKER_DEFAULTS = { batchCapacity: 64 } as const;

export interface WorkerOptions extends UpstreamOptions {
  /** This worker's copy of the data (same files as the coordinator's). Default: the run config's dataDir. */
  dataDir?: string;
  /** Largest per-step slice this worker accepts (reported at join). Default 64. */
  batchCapacity?: number;
  /** The backend in use (reported at join). Default: tf.getBackend(). */
  backend?: BackendInfo;
  /**
   * Feature-cache folder shared with the other workers of this machine (or a shared mount): a sample's frozen
   * features are computed once, by whichever worker meets it first. Default: none (each worker caches in memory).
   */
  cacheDir?: string;
  /** Builds the replica for a run config. Default: core's createReplica with this worker's dataset. */
  createReplica?: (config: RunConfig, dataset: Dataset) => Promise<Replica>;
  /** Reads the data set. Default: core's loadDataset(dataDir). */
  loadDataset?: (dir: string, config: RunConfig) => Dataset | Promise<Dataset>;
}

/** A data set's samples by index, per split: what step and predict messages name. */
export class SampleIndex {
  private readonly labelled: Map<number, Sample>;
  private readonly test: Map<number, Sample>;

  constructor(readonly dataset: Dataset) {
    this.labelled = new Map(dataset.labelled.map((s) => [s.index, s]));
    this.test = new Map(dataset.test.map((s) => [s.index, s]));
  }

  /** The samples of `split` with these indices, in order; E_DATA_INVALID names one that is not there. */
  samples(split: 'labelled' | 'test', indices: Uint32Array): Sample[] {
    const map = split === 'labelled' ? this.labelled : this.test;
    return Array.from(indices, (i) => {
      const s = map.get(i);
      if (!s) throw new DptrainError('E_DATA_INVALID', `no ${split} sample with index ${i} in ${this.dataset.root}`);
      return s;
    });
  }
}

/** The `gradients` reply to step `msg`: `res` packed as the step (or else the run config) asks, timed from `t0` (performance.now()). */
export function gradientsReply(msg: MessageOf<'step'>, res: GradientResult, config: RunConfig, t0: number): Outgoing<'gradients'> {
  return {
    type: 'gradients',
    id: msg.id,
    ...packGradients(res.gradients, msg.precision ?? wireGradientPrecision(config)),
    loss: res.loss,
    count: res.count,
    correct: res.correct,
    computeMs: performance.now() - t0,
  };
}

/** Reads the data set a run config names (or `dataDir`, this machine's copy), with the run's class names. */
export async function loadRunDataset(
  config: RunConfig,
  dataDir: string | undefined,
  load?: (dir: string, config: RunConfig) => Dataset | Promise<Dataset>,
): Promise<Dataset> {
  const dir = dataDir ?? config.dataDir;
  return (load ?? ((d: string, c: RunConfig) => loadDataset(d, c.classNames ? { classNames: c.classNames } : {})))(dir, config);
}

/**
 * A plain worker's handlers: one model replica, built from its own data copy for the run config it is sent, that
 * answers each message type (welcome, phase, weights, step, predict) in a method of its own.
 */
export class ReplicaWorker implements MessageHandlers {
  private replica: Replica | undefined;
  private replicaKey = '';
  private index: SampleIndex | undefined;
  private config: RunConfig | undefined;
  private workerId = '';
  /** Weights sent bucket by bucket (a bucket of a newer version, or offset 0, starts over: safe across reconnects). */
  private readonly incomingWeights = new WeightsAssembly();

  constructor(
    private readonly opts: WorkerOptions,
    private readonly log: (message: string) => void,
  ) {}

  async prepare(config: RunConfig, workerId: string): Promise<JoinFields> {
    this.config = config;
    this.workerId = workerId;
    // the run's precision, set before the replica computes anything (refused at join if this worker cannot)
    const precision = await workerPrecision(config.precision, this.opts.backend?.name, tf.getBackend());
    this.log('precision' in precision ? `precision ${precision.precision}` : `cannot run precision ${config.precision}: ${precision.precisionError}`);
    const r = await this.build(config);
    const b = this.opts.backend;
    return {
      backend: b?.name ?? tf.getBackend() ?? 'unknown',
      device: b?.device ?? 'cpu',
      batchCapacity: this.opts.batchCapacity ?? WORKER_DEFAULTS.batchCapacity,
      baseHash: r.baseHash,
      datasetHash: await joinDatasetIdentity(this.index!.dataset, config),
      ...(b?.gpu ? { gpu: b.gpu } : {}),
      ...precision,
    };
  }

  async welcome(msg: MessageOf<'welcome'>): Promise<void> {
    if (msg.phase) {
      await this.ready.setPhase(msg.phase);
      if (msg.weights) this.ready.setWeights(msg.weights);
    }
    this.log(`joined as ${this.workerId} at step ${msg.step}`);
  }

  async phase(msg: MessageOf<'phase'>): Promise<Outgoing<'phase_ready'>> {
    const r = this.ready;
    await r.setPhase(msg.phase);
    if (msg.weights) r.setWeights(msg.weights);
    return {
      type: 'phase_ready',
      id: msg.id,
      spec: r.spec.map((s) => ({ name: s.name, shape: s.shape, size: s.size })),
      weights: msg.wantWeights ? r.getWeights() : null,
    };
  }

  async weights(msg: MessageOf<'weights'>): Promise<void> {
    this.ready.setWeights(msg.weights);
  }

  blobDestination(header: Readonly<Record<string, unknown>>, key: string, bytes: number): Uint8Array | undefined {
    return this.incomingWeights.destination(header, key, bytes);
  }

  async weightsBucket(msg: MessageOf<'weights_bucket'>): Promise<void> {
    const whole = this.incomingWeights.add(msg);
    if (whole) this.ready.setWeights(whole);
  }

  async step(msg: MessageOf<'step'>, out: GradientOut): Promise<Outgoing<'gradients'>> {
    const t0 = performance.now();
    blockStepForTest(msg.step);
    const capacity = this.opts.batchCapacity ?? WORKER_DEFAULTS.batchCapacity;
    if (msg.indices.length > capacity)
      throw new DptrainError(
        'E_BATCH_CAPACITY',
        `step ${msg.step}: a slice of ${msg.indices.length} samples, above this worker's --batch-capacity ${capacity}`,
      );
    await slowStepForTest(msg.indices.length);
    // the mean over this slice along the micro-batch tree of the step (the coordinator merges the slices along the same tree)
    const res = await computeTreeGradients(
      this.ready,
      this.index!.samples('labelled', msg.indices),
      { phase: msg.phase, epoch: msg.epoch, step: msg.step },
      msg.microBatch,
    );
    // the reply carries the whole gradient (the link cuts it into the step's buckets), unless a test hook streams it
    if (await sendBucketsSlowlyForTest(msg, res.gradients, out)) return gradientsReply(msg, { ...res, gradients: new Float32Array(0) }, this.config!, t0);
    return gradientsReply(msg, res, this.config!, t0);
  }

  async predict(msg: MessageOf<'predict'>): Promise<Outgoing<'predictions'>> {
    const t0 = performance.now();
    const samples = this.index!.samples(msg.split, msg.indices);
    const probs = await this.ready.predict(samples);
    return { type: 'predictions', id: msg.id, count: samples.length, probs, computeMs: performance.now() - t0 };
  }

  dispose(): void {
    this.replica?.dispose();
    this.replica = undefined;
  }

  private get ready(): Replica {
    if (!this.replica) throw new DptrainError('E_PROTOCOL_SCHEMA', 'a request before the replica was built');
    return this.replica;
  }

  /** The replica for `config`: kept across reconnects while the config is the same. */
  private async build(config: RunConfig): Promise<Replica> {
    const key = JSON.stringify(config);
    if (this.replica && key === this.replicaKey) return this.replica;
    this.replica?.dispose();
    this.replica = undefined;
    const dataset = await loadRunDataset(config, this.opts.dataDir, this.opts.loadDataset);
    this.index = new SampleIndex(dataset);
    if (this.opts.createReplica) this.replica = await this.opts.createReplica(config, dataset);
    else {
      const core = await import('@dptrain/core');
      this.replica = await core.createReplica(config, {
        dataset,
        dataDir: this.opts.dataDir ?? config.dataDir,
        // a step's micro-batch results are merged (into new arrays) or sent before the next-but-one replica call,
        // and the coordinator asks for the next step only after it received this one: two buffers in turn are safe
        gradientBuffers: 2,
        ...(this.opts.backend ? { backend: this.opts.backend } : {}),
        ...(this.opts.cacheDir ? { cacheDir: this.opts.cacheDir, cacheShared: true } : {}),
      });
    }
    this.replicaKey = key;
    return this.replica;
  }
}

/**
 * A worker: connects, authenticates, builds its replica from its own data copy, joins (hashes checked by
 * the coordinator), then serves phase/step/predict/weights requests one at a time, with heartbeats.
 * It reconnects with exponential backoff when the coordinator goes away, keeping its replica.
 */
export function startWorker(opts: WorkerOptions): WorkerHandle {
  const log = opts.log ?? workerLog;
  return runUpstream({ ...opts, log }, new ReplicaWorker(opts, log));
}

export type { MessageOf };
