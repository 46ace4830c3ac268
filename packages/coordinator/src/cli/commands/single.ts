import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import type { Command } from 'commander';
import { EventBus, InProcessExecutor, createReplica, prepareTrainData, resolveBackend, runTraining, type BackendName } from '@dptrain/core';
import { addTrainingFlags, toRunConfig, type TrainingFlagValues } from '../training-flags.js';
import {
  addProtocolFlags,
  runCoordinator,
  spawnLocalWorkers,
  stopLocalWorkers,
  toProtocolOptions,
  type ProtocolFlagValues,
} from '../../cluster/index.js';
import { addViewFlags, attachRunViews, type ViewFlagValues } from '../../observability/run-views.js';

interface SingleFlags extends TrainingFlagValues, ProtocolFlagValues, ViewFlagValues {
  workers?: string;
  out?: string;
  resume?: string;
  backend?: string;
}

export function register(program: Command): void {
  const cmd = program
    .command('single')
    .description('single-node cluster: a coordinator and N local worker processes over loopback WebSockets');
  addTrainingFlags(cmd);
  addViewFlags(addProtocolFlags(cmd))
    .option('--workers <n>', 'local worker processes (0: everything in this process)', String(availableParallelism()))
    .option('--out <dir>', 'run directory (default: runs/<timestamp>)')
    .option('--resume <dir>', 'continue the run in this directory from its last checkpoint')
    .option('--backend <name>', 'backend of the workers (default: the best that loads)')
    .action(async (flags: SingleFlags) => {
      const config = toRunConfig(flags);
      const n = Number(flags.workers ?? availableParallelism());
      if (!Number.isInteger(n) || n < 0) throw new Error(`--workers: '${flags.workers}' is not a count`);
      const runDir = flags.resume ?? flags.out ?? path.join('runs', new Date().toISOString().replace(/[:.]/g, '-'));
      const bus = new EventBus();
      const views = await attachRunViews(bus, {
        runDir, plain: flags.plain, logEvery: Number(flags.logEvery), minWorkers: Math.max(1, n), charts: flags.charts,
        ...(flags.metricsPort !== undefined ? { metricsPort: Number(flags.metricsPort) } : {}),
      });
      let ok = false;
      try {
        if (n === 0) {
          const backend = await resolveBackend(flags.backend ? { backend: flags.backend as BackendName } : {});
          const result = await runTraining({
            config,
            runDir,
            bus,
            resume: flags.resume !== undefined,
            backend: { name: backend.name, device: backend.device },
            prepareData: prepareTrainData,
            executor: async ({ data }) => new InProcessExecutor(await createReplica(config, { dataset: data.dataset, backend }), { bus }),
          });
          views.say(`run directory ${path.resolve(runDir)} (${result.steps} steps)`);
          ok = true;
          return;
        }
        const token = randomBytes(24).toString('hex');
        let children: ReturnType<typeof spawnLocalWorkers> = [];
        try {
          await runCoordinator({
            config,
            runDir,
            token,
            host: '127.0.0.1',
            port: 0,
            bus,
            minWorkers: n,
            resume: flags.resume !== undefined,
            protocol: toProtocolOptions(flags),
            httpHandlers: [views.httpHandler],
            onListening: (url) => {
              views.say(`coordinator on ${url}; starting ${n} local worker(s)`);
              children = spawnLocalWorkers({
                url, token, count: n, dataDir: config.dataDir, args: flags.backend ? ['--backend', flags.backend] : [],
                // the workers' own messages would tear the dashboard; their joins and losses show in it
                ...(views.mode === 'dashboard' ? { stdio: 'ignore' as const } : {}),
              });
            },
          });
          views.say(`run directory ${path.resolve(runDir)}`);
          ok = true;
        } finally {
          await stopLocalWorkers(children);
        }
      } finally {
        if (ok) await views.finish();
        else await views.close();
      }
    });
}
