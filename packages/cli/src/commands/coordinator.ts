import * as path from 'node:path';
import type { Command } from 'commander';
import { DptrainError, EventBus } from '@dptrain/core';
import { countFlag } from '../flag-count.js';
import { addTrainingFlags, printConfigIfAsked, runDirOf, toRunConfig, type TrainingFlagValues } from '../training-flags.js';
import { addProtocolFlags, parseListen, resolveSharedToken, runCoordinator, toProtocolOptions, type ProtocolFlagValues } from '@dptrain/coordinator';
import { addViewFlags, attachRunViews, type ViewFlagValues } from '../run-views.js';
import { runUntilStopped } from '../stop-signals.js';
import { addStepGuardFlags, toStepGuardOptions, type StepGuardFlagValues } from '@dptrain/coordinator';
import { addShardFlags, toShardOptions, type ShardFlagValues } from '@dptrain/coordinator';

interface CoordinatorFlags extends TrainingFlagValues, ProtocolFlagValues, ViewFlagValues, StepGuardFlagValues, ShardFlagValues {
  listen: string;
  minWorkers: string;
  startWorkers?: string;
  token?: string;
  tokenFile?: string;
  resume?: string;
  out?: string;
  tlsCert?: string;
  tlsKey?: string;
}

export function register(program: Command): void {
  const cmd = program.command('coordinator').description('run the coordinator of a cluster: workers connect with `dptrain worker --connect ws://HOST:PORT`');
  addTrainingFlags(cmd);
  addStepGuardFlags(cmd);
  addShardFlags(cmd);
  addViewFlags(addProtocolFlags(cmd))
    .option('--listen <host:port>', 'address to listen on', '0.0.0.0:7420')
    .option('--min-workers <k>', 'training waits while fewer workers are connected', '1')
    .option('--start-workers <n>', 'the first step waits for this many workers; later ones need only --min-workers (default: --min-workers)')
    .option('--token <secret>', 'shared secret for workers and observers (default: $DPTRAIN_TOKEN); shows in ps, prefer --token-file')
    .option('--token-file <file>', 'read the shared secret from this file')
    .option('--out <dir>', 'run directory (default: runs/<timestamp>)')
    .option('--resume <dir>', 'continue the run in this directory from its last checkpoint')
    .option('--tls-cert <file>', 'PEM certificate: serve wss://')
    .option('--tls-key <file>', 'PEM private key for --tls-cert')
    .action(async (flags: CoordinatorFlags) => {
      const config = toRunConfig(flags);
      if (printConfigIfAsked(flags, config)) return;
      const { host, port } = parseListen(flags.listen);
      if (!!flags.tlsCert !== !!flags.tlsKey) throw new DptrainError('E_CONFIG', '--tls-cert and --tls-key go together');
      const minWorkers = countFlag(flags.minWorkers, '--min-workers', 1);
      const runDir = runDirOf(flags);
      const bus = new EventBus();
      const views = await attachRunViews(bus, {
        command: 'coordinator',
        runDir,
        plain: flags.plain,
        logEvery: countFlag(flags.logEvery, '--log-every', 1),
        minWorkers,
        charts: flags.charts,
        title: flags.listen,
        ...(flags.metricsPort !== undefined ? { metricsPort: Number(flags.metricsPort), metricsHost: flags.metricsHost ?? host } : {}),
      });
      const resumeHint = `dptrain coordinator --resume ${runDir} and the same flags (the workers keep retrying for their --give-up-after)`;
      await runUntilStopped(
        views,
        resumeHint,
        async (stopSignal) => {
          const { result, summary } = await runCoordinator({
            config,
            runDir,
            token: resolveSharedToken(flags),
            host,
            port,
            bus,
            minWorkers,
            ...(flags.startWorkers !== undefined ? { startWorkers: countFlag(flags.startWorkers, '--start-workers', 1) } : {}),
            resume: flags.resume !== undefined,
            protocol: toProtocolOptions(flags),
            executor: toStepGuardOptions(flags),
            ...(toShardOptions(flags) ? { shards: toShardOptions(flags) } : {}),
            httpHandlers: [views.httpHandler],
            ...(flags.tlsCert && flags.tlsKey ? { tls: { cert: flags.tlsCert, key: flags.tlsKey } } : {}),
            onListening: (url) => {
              views.say(`coordinator listening on ${url} (/metrics, /healthz, /readyz on the same port); run directory ${path.resolve(runDir)}`);
            },
            stopSignal,
          });
          return { ...result, summary };
        },
        ({ summary }) =>
          `cluster: ${summary.workersJoined} worker joins, ${summary.workersLost.length} lost, ${Object.values(summary.framesRejected).reduce((a, b) => a + b, 0)} frames rejected`,
      );
    });
}
