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
import { spawnLocalWorker, workerCpuSets } from './local-workers.js';
import type { HttpHandler } from './server.js';
import { routeWorkerOutput, type WorkerOutputMode } from './worker-output.js';
import { WorkerSupervisor, WORKER_SUPERVISOR_DEFAULTS } from './worker-supervisor.js';

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
}

/**
 * Single-node mode: a coordinator and N local `dptrain worker` processes over loopback WebSockets, the same
 * code path as a real cluster (a fresh random token per run). With 0 workers, the recipe runs in process.
 */
export async function runSingleNode(opts: SingleNodeOptions): Promise<TrainResult> {
  const { runDir, workers: n } = opts;
  const bus = opts.bus ?? new EventBus();
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
  let supervisor: WorkerSupervisor | undefined;
  const log = (level: 'debug' | 'info' | 'warn' | 'error', message: string): void => bus.emit({ type: 'log', time: Date.now(), level, message });
  try {
    const { result } = await runCoordinator({
      config,
      runDir,
      token,
      host: '127.0.0.1',
      port: 0,
      bus,
      minWorkers: n,
      resume: opts.resume ?? false,
      ...(opts.protocol ? { protocol: opts.protocol } : {}),
      ...(opts.httpHandlers ? { httpHandlers: opts.httpHandlers } : {}),
      ...(opts.stopSignal ? { stopSignal: opts.stopSignal } : {}),
      ...(opts.executor ? { executor: opts.executor } : {}),
      onListening: (url, _server, executor) => {
        const pin = workerCpuSets({ count: n });
        const where = pin.sets ? `pinned to CPUs ${pin.sets.map((s) => s.join(',')).join(' | ')}` : `not pinned: ${pin.reason}`;
        const maxRestarts = opts.maxRestarts ?? WORKER_SUPERVISOR_DEFAULTS.maxRestarts;
        opts.say?.(`coordinator on ${url}; starting ${n} local worker(s), ${where}; up to ${maxRestarts} restart(s) of lost ones`);
        const workerOpts = {
          url,
          token,
          count: n,
          dataDir: config.dataDir,
          // one feature cache for all local workers: each sample's frozen pass runs once, whoever meets it
          args: [...(opts.backend ? ['--backend', opts.backend] : []), '--cache-dir', path.join(path.resolve(runDir), 'feature-cache')],
          stdio: opts.workerOutput === 'ignore' ? ('ignore' as const) : ('pipe' as const),
        };
        supervisor = new WorkerSupervisor({
          count: n,
          maxRestarts,
          ...(opts.restartDelayMs !== undefined ? { restartDelayMs: opts.restartDelayMs } : {}),
          start: (slot) => {
            const child = spawnLocalWorker(workerOpts, slot, pin.sets);
            routeWorkerOutput(child, { mode: opts.workerOutput ?? 'inherit', name: `local worker ${slot + 1}`, emit: (e) => bus.emit(e) });
            return child;
          },
          log,
          onCapacity: (left) => {
            // the budget is used up: train with the survivors (or fail when none is left)
            if (left > 0) executor.setMinWorkers(left);
            else
              executor.fail(new DptrainError('E_NO_WORKERS', `all ${n} local workers died and the restart budget (--max-restarts ${maxRestarts}) is used up`));
          },
        });
        supervisor.start();
      },
    });
    return result;
  } finally {
    await supervisor?.stop();
  }
}
