import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import {
  DptrainError,
  EventBus,
  localExecutorFactory,
  prepareTrainData,
  isBackendName,
  runTraining,
  withRunPrecision,
  type ProtocolOptions,
  type RunConfig,
  type TrainResult,
  startBackend,
} from '@dptrain/core';
import { runCoordinator, type CoordinatorOptions } from './run-coordinator.js';
import type { ChildProcess } from 'node:child_process';
import { spawnLocalAgent, stopLocalWorkers, workerCpuSets } from './local-workers.js';
import type { HttpHandler } from './server.js';
import { routeWorkerOutput, type WorkerOutputMode } from './worker-output.js';
import { WORKER_SUPERVISOR_DEFAULTS } from './worker-supervisor.js';
import { spawnLocalShard } from './local-shards.js';

export interface SingleNodeOptions {
  config: RunConfig;
  /** Run directory. */
  runDir: string;
  /** Local worker processes; 0 runs everything in this process (InProcessExecutor). */
  workers: number;
  /** Event stream (views, logs). Default: a new bus. */
  bus?: EventBus;
  /** Continue from the run directory's checkpoint. Default false. */
  resume?: boolean;
  /** Backend of the workers (or of this process with 0 workers). Default: the best that loads. */
  backend?: string;
  /** Protocol limits. Default: the protocol's defaults. */
  protocol?: ProtocolOptions;
  /** Extra HTTP routes on the coordinator (metrics, health). Default: none. */
  httpHandlers?: HttpHandler[];
  /** Where the workers' own output goes: 'inherit' (as it was, plain mode), 'events' (run log + dashboard), 'ignore'. Default 'inherit'. */
  workerOutput?: WorkerOutputMode;
  /** Told once the coordinator listens. Default: nothing. */
  say?: (line: string) => void;
  /** Shared secret of the local cluster (e.g. from --token-file, for a dashboard). Default: a random one per run. */
  token?: string;
  /** Restarts of lost local workers allowed for the whole run (`--max-restarts`). Default 3. */
  maxRestarts?: number;
  /** Pause before a worker restart, in ms. Default 1000. */
  restartDelayMs?: number;
  /** Stop cleanly once aborted: the step completes, a checkpoint is written, the workers are stopped. Default: never. */
  stopSignal?: AbortSignal;
  /** Executor options (gradient-norm bound, request deadlines). Default: the executor's defaults. */
  executor?: CoordinatorOptions['executor'];
  /**
   * The sharded summation service (`--shards S`): S local `dptrain shard` processes are started (auto: one, beside the local agent). A
   * lost one is not restarted: the run rolls back to its checkpoint and goes on with the others. Default: none.
   */
  shards?: CoordinatorOptions['shards'];
}

/**
 * Single-node mode: a coordinator and one local agent (`dptrain worker --nproc-per-node N`) with N worker processes,
 * over loopback WebSockets: the same code path as a cluster of agents (a fresh random token per run). The agent
 * restarts lost workers (`maxRestarts`). With 0 workers, the recipe runs in process.
 */
export async function runSingleNode(opts: SingleNodeOptions): Promise<TrainResult> {
  const { runDir, workers: n } = opts;
  const bus = opts.bus ?? new EventBus();
  if (n === 0 && opts.shards)
    throw new DptrainError('E_CONFIG', '--shards needs worker processes (--workers 1 or more): in process, there is nothing to shard');
  if (n === 0) {
    const backend = await startBackend(opts.backend);
    const config = await withRunPrecision(opts.config, backend.name);
    return runTraining({
      config,
      runDir,
      bus,
      resume: opts.resume ?? false,
      backend: { name: backend.name, device: backend.device },
      prepareData: prepareTrainData,
      executor: localExecutorFactory({ backend }),
      ...(opts.stopSignal ? { stopSignal: opts.stopSignal } : {}),
    });
  }
  // the local workers run opts.backend (or the best that loads) on this machine's CPU: auto resolves for them here
  const config = await withRunPrecision(opts.config, opts.backend && isBackendName(opts.backend) ? opts.backend : 'cluster');
  const token = opts.token ?? randomBytes(24).toString('hex');
  let agent: ChildProcess | undefined;
  let finished = false;
  const shardProcesses: ChildProcess[] = [];
  try {
    const { result } = await runCoordinator({
      config,
      runDir,
      token,
      host: '127.0.0.1',
      port: 0,
      bus,
      minWorkers: 1,
      resume: opts.resume ?? false,
      ...(opts.protocol ? { protocol: opts.protocol } : {}),
      ...(opts.httpHandlers ? { httpHandlers: opts.httpHandlers } : {}),
      ...(opts.stopSignal ? { stopSignal: opts.stopSignal } : {}),
      ...(opts.executor ? { executor: opts.executor } : {}),
      ...(opts.shards ? { shards: opts.shards } : {}),
      onListening: (url, _server, executor) => {
        // auto: the one local agent starts its shard beside it when the executor asks
        const shards = opts.shards ? (opts.shards.shards === 'auto' ? 0 : opts.shards.shards) : 0;
        for (let k = 0; k < shards; k++) {
          const child = spawnLocalShard({ url, token, stdio: opts.workerOutput === 'ignore' ? 'ignore' : 'pipe' });
          routeWorkerOutput(child, { mode: opts.workerOutput ?? 'inherit', name: `local shard ${k + 1}`, emit: (e) => bus.emit(e) });
          shardProcesses.push(child);
        }
        const pin = workerCpuSets({ count: n });
        const where = pin.sets ? `pinned to CPUs ${pin.sets.map((s) => s.join(',')).join(' | ')}` : `not pinned: ${pin.reason}`;
        const maxRestarts = opts.maxRestarts ?? WORKER_SUPERVISOR_DEFAULTS.maxRestarts;
        opts.say?.(`coordinator on ${url}; starting a local agent with ${n} worker(s), ${where}; up to ${maxRestarts} restart(s) of lost ones`);
        // one agent, as on every machine of a cluster: it starts the workers, restarts lost ones, merges their gradients
        agent = spawnLocalAgent({
          url,
          token,
          dataDir: config.dataDir,
          workers: n,
          maxRestarts,
          args: [
            ...(opts.backend ? ['--backend', opts.backend] : []),
            // one feature cache for all local workers: each sample's frozen pass runs once, whoever meets it
            '--cache-dir',
            path.join(path.resolve(runDir), 'feature-cache'),
            ...(opts.restartDelayMs !== undefined ? ['--restart-delay-ms', String(opts.restartDelayMs)] : []),
          ],
          stdio: opts.workerOutput === 'ignore' ? 'ignore' : 'pipe',
        });
        routeWorkerOutput(agent, { mode: opts.workerOutput ?? 'inherit', name: 'local agent', emit: (e) => bus.emit(e) });
        agent.once('exit', (code, signal) => {
          if (finished) return;
          // the agent restarts its workers; without it no worker is left (its last words say why)
          const how = signal ? `was killed by ${signal}` : `exited with status ${code}`;
          executor.fail(new DptrainError('E_NO_WORKERS', `the local agent ${how}: no local worker is left`));
        });
      },
    });
    finished = true;
    return result;
  } finally {
    finished = true;
    if (agent) await stopLocalWorkers([agent], WORKER_SUPERVISOR_DEFAULTS.stopGraceMs * 2);
    await stopLocalWorkers(shardProcesses);
  }
}
