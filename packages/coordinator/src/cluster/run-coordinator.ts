import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import {
  DptrainError,
  isDptrainError,
  readCheckpoint,
  resolveClassWeightsFromLabelled,
  EventBus,
  joinDatasetIdentity,
  loadDataset,
  prepareTrainData,
  runTraining,
  systemClock,
  withRunPrecision,
  writeFileAtomic,
  type Clock,
  type ProtocolOptions,
  type RunConfig,
  type TrainResult,
  type WorkerInfo,
} from '@dptrain/core';
import { ClusterExecutor, type ClusterExecutorOptions } from './executor.js';
import type { EpochSampleCount } from './ledger.js';
import { ClusterServer, type HttpHandler } from './server.js';
import { ShardedClusterExecutor, type ShardedExecutorOptions } from './sharded-executor.js';

export interface CoordinatorOptions {
  config: RunConfig;
  /** Run directory (model, metrics.jsonl, report.json, submission.csv, checkpoint, cluster.json). */
  runDir: string;
  /** Shared secret for workers and observers. */
  token: string;
  /** Interface to listen on. Default '127.0.0.1'. */
  host?: string;
  /** Port; 0 picks a free one. Default 0. */
  port?: number;
  /** Training waits while fewer workers are joined. Default 1. */
  minWorkers?: number;
  /** The first phase waits until this many workers are joined; then `minWorkers` suffice. Default: minWorkers. */
  startWorkers?: number;
  /** Continue from `<runDir>`'s checkpoint. Default false. */
  resume?: boolean;
  /** PEM cert/key files for wss://. Default: plain ws. */
  tls?: { cert: string; key: string };
  /** Protocol limits (heartbeat, lost-after, payload...). Default: DEFAULT_PROTOCOL_OPTIONS. */
  protocol?: ProtocolOptions;
  /** Event bus of the run (dashboard, logs, metrics subscribe here). Default: a new bus. */
  bus?: EventBus;
  /** Clock. Default systemClock. */
  clock?: Clock;
  /** Extra HTTP routes on the coordinator's server (e.g. /metrics, /healthz). Default: none. */
  httpHandlers?: HttpHandler[];
  /** Called once the server listens, with its ws:// or wss:// URL (e.g. to start local workers). */
  onListening?: (url: string, server: ClusterServer, executor: ClusterExecutor) => void | Promise<void>;
  /** Executor tuning (maxWorkers, predictChunk, ackWeights). Default: none. */
  executor?: Omit<ClusterExecutorOptions, 'server' | 'minWorkers' | 'startWorkers' | 'clock'>;
  /**
   * The sharded summation service (`--shards S|auto`, bucket size, wait): shards join as `dptrain shard` and own
   * ranges of the trainable vector. Default: none (the coordinator merges and updates; the star).
   */
  shards?: Pick<ShardedExecutorOptions, 'shards' | 'bucketFloats' | 'shardWaitMs'> & {
    /** Rollbacks to the last checkpoint after lost shards, for the whole run; then the run fails. Default 3. */
    maxRollbacks?: number;
  };
  /** Stop (as if killed) after this many global steps (tests). Default: never. */
  haltAfterSteps?: number;
  /** Validate by decoding every image (false: existence + magic bytes). Default true. */
  decodeOnValidate?: boolean;
  /**
   * Stop cleanly once aborted (see runTraining's `stopSignal`): a wait for workers ends at once, and the server
   * closes without `bye`, so remote workers keep retrying for a restarted coordinator. Default: never.
   */
  stopSignal?: AbortSignal;
}

/** cluster.json: what the cluster did, for the report and the tests. */
export interface ClusterSummary {
  url: string;
  /** Per epoch: samples whose gradients were counted, distinct, doubled. */
  epochs: EpochSampleCount[];
  workersJoined: number;
  workersLost: { id: string; reason: string }[];
  framesRejected: Record<string, number>;
}

/**
 * Runs `train`, and after an E_SHARD_LOST runs it again from the checkpoint (`resume`), at most `maxRollbacks`
 * times; `before` is told each time (the ledger forgets the replayed steps, an event says so).
 */
async function rollingBack(
  train: (resume: boolean) => Promise<TrainResult>,
  resume: boolean,
  maxRollbacks: number,
  before: (err: DptrainError, left: number) => Promise<void>,
): Promise<TrainResult> {
  for (let rollbacks = 0; ; rollbacks++) {
    try {
      return await train(resume || rollbacks > 0);
    } catch (err) {
      if (!isDptrainError(err) || err.code !== 'E_SHARD_LOST') throw err;
      if (rollbacks >= maxRollbacks) throw new DptrainError('E_NO_SHARDS', `${err.message}: but the rollback budget (${maxRollbacks}) is used up`);
      await before(err, maxRollbacks - rollbacks - 1);
    }
  }
}

/**
 * `dptrain coordinator`: listens for workers, prepares the data, and runs the training recipe with a
 * ClusterExecutor; writes cluster.json next to report.json.
 */
export async function runCoordinator(opts: CoordinatorOptions): Promise<{ result: TrainResult; summary: ClusterSummary }> {
  const clock = opts.clock ?? systemClock;
  const bus = opts.bus ?? new EventBus();
  const dataset = loadDataset(opts.config.dataDir, opts.config.classNames ? { classNames: opts.config.classNames } : {});
  // the workers get the config as they join: --class-weight auto becomes numbers here
  // and --precision auto is resolved once, here (a worker that cannot run it is refused at join)
  const config = await withRunPrecision(resolveClassWeightsFromLabelled(opts.config, dataset.labelled, dataset.classNames.length), 'cluster');
  // the identity every worker's copy must prove at join: names and labels, plus the files' content (config.contentHash)
  const datasetHash = await joinDatasetIdentity(dataset, config);
  const server = new ClusterServer({
    token: opts.token,
    config,
    bus,
    clock,
    datasetHash,
    host: opts.host ?? '127.0.0.1',
    port: opts.port ?? 0,
    ...(opts.tls ? { tls: opts.tls } : {}),
    ...(opts.protocol ? { protocol: opts.protocol } : {}),
    ...(opts.httpHandlers ? { httpHandlers: opts.httpHandlers } : {}),
  });
  const lost: { id: string; reason: string }[] = [];
  let joined = 0;
  const joinedWorkers = new Map<string, WorkerInfo>();
  bus.on((e) => {
    if (e.type === 'worker_lost') lost.push({ id: e.id, reason: e.reason });
    if (e.type === 'worker_joined') {
      joined++;
      joinedWorkers.set(e.worker.id, e.worker);
    }
  });
  const url = await server.listen();
  bus.emit({ type: 'log', time: clock.now(), level: 'info', message: `coordinator listening on ${url}` });
  const executorOptions = {
    ...opts.executor,
    server,
    minWorkers: opts.minWorkers ?? 1,
    ...(opts.startWorkers !== undefined ? { startWorkers: opts.startWorkers } : {}),
    clock,
  };
  const executor = opts.shards ? new ShardedClusterExecutor({ ...executorOptions, ...opts.shards }) : new ClusterExecutor(executorOptions);
  const runDir = path.resolve(opts.runDir);
  const summary = (): ClusterSummary => ({
    url,
    epochs: executor.ledger.summary(),
    workersJoined: joined,
    workersLost: lost,
    framesRejected: Object.fromEntries(server.rejected),
  });
  const stop = opts.stopSignal;
  const onStop = (): void => executor.fail(new DptrainError('E_STOPPED', 'the run was stopped while it waited for workers'));
  stop?.addEventListener('abort', onStop, { once: true });
  try {
    await opts.onListening?.(url, server, executor);
    const train = (resume: boolean): Promise<TrainResult> =>
      runTraining({
        config,
        runDir,
        executor,
        bus,
        clock,
        prepareData: (c, b, k) => prepareTrainData(c, b, k, opts.decodeOnValidate === false ? { decode: false } : {}),
        backend: { name: 'cluster', device: 'workers' },
        workers: Math.max(opts.minWorkers ?? 1, opts.startWorkers ?? 0, server.workers.length),
        workersJoinedBefore: [...joinedWorkers.values()],
        resume,
        ...(opts.haltAfterSteps !== undefined ? { haltAfterSteps: opts.haltAfterSteps } : {}),
        ...(stop ? { stopSignal: stop } : {}),
      });
    const result = await rollingBack(train, opts.resume ?? false, opts.shards?.maxRollbacks ?? 3, async (err, left) => {
      // a lost shard: back to the last checkpoint (every shard's range is in it), its later steps uncounted
      const at = (await readCheckpoint(runDir).catch(() => undefined))?.step ?? 0;
      executor.ledger.rollBackTo(at);
      bus.emit({
        type: 'log',
        time: clock.now(),
        level: 'warn',
        message: `rollback: ${err.message.replace(/; the run rolls back.*$/, '')}; the run goes back to its checkpoint at step ${at} (${left} rollback(s) left)`,
      });
    });
    await fs.mkdir(runDir, { recursive: true });
    await writeFileAtomic(path.join(runDir, 'cluster.json'), JSON.stringify(summary(), null, 2));
    return { result, summary: summary() };
  } finally {
    stop?.removeEventListener('abort', onStop);
    await executor.close({ bye: !stop?.aborted });
  }
}
