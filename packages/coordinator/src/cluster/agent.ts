import { randomBytes } from 'node:crypto';
import {
  DptrainError,
  EventBus,
  joinDatasetIdentity,
  type MessageOf,
  type Outgoing,
  type ProtocolOptions,
  type RunConfig,
  type WorkerInfo,
} from '@dptrain/core';
import {
  SampleIndex,
  gradientsReply,
  loadRunDataset,
  runUpstream,
  workerLog,
  type JoinFields,
  type MessageHandlers,
  type UpstreamOptions,
  type WorkerHandle,
  type GradientOut,
} from '@dptrain/worker';
import { AgentShard } from './agent-shard.js';
import { ClusterExecutor } from './executor.js';
import { spawnLocalWorker, workerCpuSets } from './local-workers.js';
import type { NodeLayout } from './nproc.js';
import { ClusterServer } from './server.js';
import { pinWorkersFromEnv } from '../env.js';
import { WorkerSupervisor, WORKER_SUPERVISOR_DEFAULTS } from './worker-supervisor.js';

/** Defaults of {@link AgentOptions} that are the agent's own. */
export const AGENT_DEFAULTS = { maxRestarts: WORKER_SUPERVISOR_DEFAULTS.maxRestarts, joinTimeoutMs: 600_000 } as const;

export interface AgentOptions extends UpstreamOptions {
  /** The local workers: how many, and each one's environment (see resolveNproc). */
  layout: NodeLayout;
  /** This machine's copy of the data, for the agent and its workers. Default: the run config's dataDir. */
  dataDir?: string;
  /** Extra `dptrain worker` flags of every local worker (--backend, --cache-dir, --batch-capacity...). Default: none. */
  workerArgs?: string[];
  /** The program the local workers run instead of `dptrain worker` (`--worker-command`, e.g. the lab's synthetic worker). Default: `dptrain worker`. */
  workerCommand?: string[];
  /** Restarts of lost local workers for the whole run (`--max-restarts`). Default 3. */
  maxRestarts?: number;
  /** Pause before a local worker restart, in ms. Default 1000. */
  restartDelayMs?: number;
  /** Longest wait for the local workers to join before the agent joins upstream, in ms. Default 600000. */
  joinTimeoutMs?: number;
  /** Protocol options of the local (loopback) server. Default: the protocol's defaults. */
  localProtocol?: ProtocolOptions;
  /** Address the other agents reach this agent's shard on (`--shards auto`). Default: this machine's address on the route to the coordinator. */
  shardHost?: string;
  /** PEM certificate and key of this agent's shard (`--shards auto`): it serves wss://. Default: plain ws://. */
  shardTls?: { cert: string; key: string };
}

/** What the agent runs for one run config: a loopback coordinator side (server + executor) and its local workers. */
interface LocalCluster {
  key: string;
  config: RunConfig;
  server: ClusterServer;
  executor: ClusterExecutor;
  supervisor: WorkerSupervisor;
  index: SampleIndex;
  datasetHash: string;
}

/**
 * An agent's handlers: a worker upstream, a coordinator downstream. Each request from the coordinator is answered
 * by the coordinator's own cluster code over the local workers: a step's slice (a node of the micro-batch tree) is
 * computed by `ClusterExecutor.computeGradients` as a whole batch, which cuts it into tree nodes among the local
 * workers and merges their means along the same tree, so the bits are those of a plain worker; weights frames and
 * the pipelined update's weights buckets (bucket-relay.ts) are forwarded as received; prediction chunks are split
 * among the workers; a phase switch reaches all of them.
 */
export class AgentHandlers implements MessageHandlers {
  private local: LocalCluster | undefined;
  /** Set once no local worker is left (the restart budget used up). */
  noWorkers: string | undefined;
  /** The shard beside this agent, started when the coordinator asks (`--shards auto`). */
  private readonly shard: AgentShard;

  constructor(
    private readonly opts: AgentOptions,
    private readonly log: (message: string) => void,
    private readonly onNoWorkers: (why: string) => void,
  ) {
    this.shard = new AgentShard({
      url: opts.url,
      token: opts.token,
      log,
      ...(opts.ca ? { ca: opts.ca } : {}),
      ...(opts.heartbeatIntervalMs ? { heartbeatIntervalMs: opts.heartbeatIntervalMs } : {}),
      ...(opts.lostAfterMs ? { lostAfterMs: opts.lostAfterMs } : {}),
      ...(opts.shardHost ? { advertiseHost: opts.shardHost } : {}),
      ...(opts.shardTls ? { tls: opts.shardTls } : {}),
    });
  }

  async prepare(config: RunConfig): Promise<JoinFields> {
    const local = await this.cluster(config);
    const n = this.opts.layout.count;
    await this.waitForLocalWorkers(local, n);
    const peers = local.server.workers;
    const lead = peers[0]!.info!;
    return {
      backend: lead.backend,
      device: n > 1 ? `${n} x ${lead.device}` : lead.device,
      batchCapacity: peers.reduce((a, p) => a + (p.info?.batchCapacity ?? 0), 0),
      localWorkers: n,
      baseHash: local.server.referenceHashes.baseHash!,
      datasetHash: local.datasetHash,
      ...(lead.gpu ? { gpu: lead.gpu } : {}),
      ...(lead.precision ? { precision: lead.precision as 'fp32' | 'bf16' } : {}),
    };
  }

  async welcome(msg: MessageOf<'welcome'>): Promise<void> {
    if (msg.phase) await this.ready.executor.beginPhase(msg.phase, msg.weights ?? undefined);
    this.log(`joined at step ${msg.step} with ${this.ready.server.workers.length} local worker(s)`);
  }

  async phase(msg: MessageOf<'phase'>): Promise<Outgoing<'phase_ready'>> {
    const r = await this.ready.executor.beginPhase(msg.phase, msg.weights ?? undefined);
    return { type: 'phase_ready', id: msg.id, spec: r.spec, weights: msg.wantWeights ? r.weights : null };
  }

  async weights(msg: MessageOf<'weights'>, frame: Buffer[]): Promise<void> {
    // the frame as it came (same version, same ack flag): the local workers' acks are awaited when it asks for them
    await this.ready.executor.broadcastWeights(msg.weights, msg.version, frame, msg.ack);
  }

  async weightsBucket(msg: MessageOf<'weights_bucket'>, frame: Buffer[]): Promise<void> {
    await this.ready.executor.forwardWeightsBucket(msg, frame); // each bucket on at once, as received
  }

  async step(msg: MessageOf<'step'>, out: GradientOut): Promise<Outgoing<'gradients'>> {
    const t0 = performance.now();
    const { executor, index, config } = this.ready;
    const samples = index.samples('labelled', msg.indices);
    // asked for buckets: each merged bucket goes upstream as soon as every local part has it (streamed-merge.ts)
    const stream = msg.bucketFloats !== undefined ? { bucketFloats: msg.bucketFloats, emit: out } : undefined;
    const res = await executor.computeGradients(samples, { phase: msg.phase, epoch: msg.epoch, step: msg.step }, msg.microBatch, stream);
    // the machine's compute time, the slowest local worker's (what its share should follow): a streamed reply's wall
    // time also holds the upload, which does not grow with the share and would make the agent's rate look noisy
    const computeMs = Math.max(0, ...res.workers.map((w) => w.computeMs));
    // how the part was shared among the local workers: the coordinator's dashboard shows them under this agent
    const local = res.workers.map(({ id, samples, computeMs: ms }) => ({ id, samples, computeMs: ms }));
    return { ...gradientsReply(msg, res, config, t0), ...(stream && computeMs > 0 ? { computeMs } : {}), local };
  }

  async predict(msg: MessageOf<'predict'>): Promise<Outgoing<'predictions'>> {
    const t0 = performance.now();
    const { executor, index } = this.ready;
    const samples = index.samples(msg.split, msg.indices);
    // the chunk cut among the local workers; each image's probabilities still come from one call
    const chunk = Math.ceil(samples.length / Math.max(1, executor.workerCount));
    const probs = await executor.predict(samples, msg.split === 'test' ? 'predict' : 'evaluate', chunk);
    return { type: 'predictions', id: msg.id, count: samples.length, probs, computeMs: performance.now() - t0 };
  }

  async hostShard(): Promise<void> {
    await this.shard.start();
  }

  async dispose(): Promise<void> {
    await this.shard.stop();
    const local = this.local;
    this.local = undefined;
    if (!local) return;
    await local.executor.close(); // bye: the local workers exit by themselves (status 0)
    await local.supervisor.stop();
  }

  private get ready(): LocalCluster {
    if (!this.local) throw new DptrainError('E_PROTOCOL_SCHEMA', 'a request before the local workers were started');
    return this.local;
  }

  /** The local cluster of `config`: kept across reconnects while the config is the same. */
  private async cluster(config: RunConfig): Promise<LocalCluster> {
    const key = JSON.stringify(config);
    if (this.local?.key === key) return this.local;
    await this.dispose();
    const dataset = await loadRunDataset(config, this.opts.dataDir);
    const datasetHash = await joinDatasetIdentity(dataset, config);
    const bus = new EventBus();
    bus.on((e) => {
      if (e.type === 'log' && e.level !== 'debug' && e.level !== 'info') this.log(e.message);
      else if (e.type === 'worker_lost') this.log(`local worker ${e.id} lost: ${e.reason}`);
      else if (e.type === 'frame_rejected') this.log(`local frame rejected (${e.code}): ${e.reason}`);
    });
    // the local workers prove the same data and base as this agent does upstream; the base hash is the server's own
    const token = randomBytes(24).toString('hex');
    const localConfig = { ...config, dataDir: this.opts.dataDir ?? config.dataDir };
    const server = new ClusterServer({
      token,
      config: localConfig,
      bus,
      datasetHash,
      host: '127.0.0.1',
      port: 0,
      ...(this.opts.localProtocol ? { protocol: this.opts.localProtocol } : {}),
    });
    const url = await server.listen();
    // exact fp32 among the local workers: the agent rounds once, when it sends the merged gradient upstream
    const executor = new ClusterExecutor({ server, minWorkers: 1, gradientPrecision: 'fp32' });
    const { layout } = this.opts;
    const n = layout.count;
    const pin = workerCpuSets({ count: n, pinCpus: layout.pinCpus && pinWorkersFromEnv() });
    const maxRestarts = this.opts.maxRestarts ?? AGENT_DEFAULTS.maxRestarts;
    this.log(
      `local server on ${url}; starting ${layout.describe}, ${pin.sets ? `pinned to CPUs ${pin.sets.map((s) => s.join(',')).join(' | ')}` : `not pinned: ${pin.reason}`}; up to ${maxRestarts} restart(s) of lost ones (--max-restarts)`,
    );
    const workerOpts = {
      url,
      token,
      count: n,
      dataDir: localConfig.dataDir,
      args: this.opts.workerArgs ?? [],
      stdio: 'inherit' as const,
      slotEnv: layout.slotEnv,
      ...(this.opts.workerCommand ? { command: this.opts.workerCommand } : {}),
    };
    const supervisor = new WorkerSupervisor({
      count: n,
      maxRestarts,
      ...(this.opts.restartDelayMs !== undefined ? { restartDelayMs: this.opts.restartDelayMs } : {}),
      start: (slot) => spawnLocalWorker(workerOpts, slot, pin.sets),
      log: (_level, message) => this.log(message),
      onCapacity: (left) => {
        if (left > 0) return; // the survivors carry on: a step only waits for one local worker
        const why = `all ${n} local workers died and the restart budget (--max-restarts ${maxRestarts}) is used up`;
        this.noWorkers = why;
        executor.fail(new DptrainError('E_NO_WORKERS', why));
        this.onNoWorkers(why);
      },
    });
    supervisor.start();
    this.local = { key, config, server, executor, supervisor, index: new SampleIndex(dataset), datasetHash };
    return this.local;
  }

  /** Waits until `n` local workers joined (fewer once the restart budget ran out), so the join upstream says what stands behind it. */
  private async waitForLocalWorkers(local: LocalCluster, n: number): Promise<void> {
    const t0 = Date.now();
    const limit = this.opts.joinTimeoutMs ?? AGENT_DEFAULTS.joinTimeoutMs;
    while (local.server.workers.length < Math.min(n, local.supervisor.capacity)) {
      if (this.noWorkers) throw new DptrainError('E_NO_WORKERS', this.noWorkers);
      if (Date.now() - t0 > limit)
        throw new DptrainError('E_TIMEOUT', `only ${local.server.workers.length} of ${n} local workers joined within ${Math.round(limit / 1000)} s`);
      await local.server.waitForJoin(1000);
    }
    if (local.server.workers.length === 0) throw new DptrainError('E_NO_WORKERS', this.noWorkers ?? 'no local worker joined');
  }

  /** What the local workers are (for logs and tests). */
  get localWorkers(): WorkerInfo[] {
    return (this.local?.server.workers ?? []).flatMap((p) => (p.info ? [p.info] : []));
  }
}

/** An agent's handle: a worker's, and why it stopped for want of workers when it did. */
export interface AgentHandle extends WorkerHandle {
  readonly handlers: AgentHandlers;
}

/**
 * `dptrain worker --nproc-per-node N|gpu|cpu`: one agent per machine. Upstream it is ONE worker of the coordinator
 * (its join says how many local workers stand behind it and the sum of their batch capacities); downstream it runs a
 * loopback ClusterServer with a fresh random token and G ordinary `dptrain worker` processes, restarted within
 * `--max-restarts` (each restart logged). They exit with it, even on its `kill -9` (--exit-with-parent).
 */
export function startAgent(opts: AgentOptions): AgentHandle {
  const log = opts.log ?? workerLog;
  let handle: WorkerHandle | undefined;
  const handlers = new AgentHandlers(
    opts,
    (m) => log(`agent: ${m}`),
    (why) => {
      log(`agent: ${why}; stopping`);
      handle?.stop();
    },
  );
  handle = runUpstream({ ...opts, log }, handlers);
  const done = handle.done.then((e) => (handlers.noWorkers ? { reason: 'refused' as const, detail: `E_NO_WORKERS: ${handlers.noWorkers}` } : e));
  return { done, stop: () => handle!.stop(), handlers };
}
