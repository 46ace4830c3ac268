import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import {
  EventBus,
  localExecutorFactory,
  prepareTrainData,
  resolveBackend,
  runTraining,
  type BackendName,
  type ProtocolOptions,
  type RunConfig,
  type TrainResult,
} from '@dptrain/core';
import { runCoordinator } from './run-coordinator.js';
import { spawnLocalWorkers, stopLocalWorkers, workerCpuSets } from './local-workers.js';
import type { HttpHandler } from './server.js';

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
  /** Where the workers' own output goes. Default 'inherit'. */
  workerOutput?: 'inherit' | 'ignore';
  /** Told once the coordinator listens. Default: nothing. */
  say?: (line: string) => void;
  /** Shared secret of the local cluster (e.g. from --token-file, for a dashboard). Default: a random one per run. */
  token?: string;
}

/**
 * Single-node mode: a coordinator and N local `dptrain worker` processes over loopback WebSockets, the same
 * code path as a real cluster (a fresh random token per run). With 0 workers, the recipe runs in process.
 */
export async function runSingleNode(opts: SingleNodeOptions): Promise<TrainResult> {
  const { config, runDir, workers: n } = opts;
  const bus = opts.bus ?? new EventBus();
  if (n === 0) {
    const backend = await resolveBackend(opts.backend ? { backend: opts.backend as BackendName } : {});
    return runTraining({
      config,
      runDir,
      bus,
      resume: opts.resume ?? false,
      backend: { name: backend.name, device: backend.device },
      prepareData: prepareTrainData,
      executor: localExecutorFactory({ backend }),
    });
  }
  const token = opts.token ?? randomBytes(24).toString('hex');
  let children: ReturnType<typeof spawnLocalWorkers> = [];
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
      onListening: (url) => {
        const pin = workerCpuSets({ count: n });
        const where = pin.sets ? `pinned to CPUs ${pin.sets.map((s) => s.join(',')).join(' | ')}` : `not pinned: ${pin.reason}`;
        opts.say?.(`coordinator on ${url}; starting ${n} local worker(s), ${where}`);
        children = spawnLocalWorkers({
          url,
          token,
          count: n,
          dataDir: config.dataDir,
          // one feature cache for all local workers: each sample's frozen pass runs once, whoever meets it
          args: [...(opts.backend ? ['--backend', opts.backend] : []), '--cache-dir', path.join(path.resolve(runDir), 'feature-cache')],
          stdio: opts.workerOutput ?? 'inherit',
        });
      },
    });
    return result;
  } finally {
    await stopLocalWorkers(children);
  }
}
