import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import type { Command } from 'commander';
import { EventBus } from '@dptrain/core';
import { addTrainingFlags, printConfigIfAsked, runDirOf, toRunConfig, type TrainingFlagValues } from '../training-flags.js';
import { addProtocolFlags, resolveSharedToken, runSingleNode, toProtocolOptions, type ProtocolFlagValues } from '@dptrain/coordinator';
import { addViewFlags, attachRunViews, type ViewFlagValues } from '../run-views.js';
import { WORKER_SUPERVISOR_DEFAULTS } from '@dptrain/coordinator';
import { runUntilStopped } from '../stop-signals.js';
import { countFlag } from '../flag-count.js';
import { addStepGuardFlags, toStepGuardOptions, type StepGuardFlagValues } from '@dptrain/coordinator';
import { addShardFlags, toShardOptions, type ShardFlagValues } from '@dptrain/coordinator';

interface SingleFlags extends TrainingFlagValues, ProtocolFlagValues, ViewFlagValues, StepGuardFlagValues, ShardFlagValues {
  workers?: string;
  out?: string;
  resume?: string;
  backend?: string;
  tokenFile?: string;
  maxRestarts: string;
}

export function register(program: Command): void {
  const cmd = program.command('single').description('single-node cluster: a coordinator and N local worker processes over loopback WebSockets');
  addTrainingFlags(cmd);
  addStepGuardFlags(cmd);
  addShardFlags(cmd);
  addViewFlags(addProtocolFlags(cmd))
    .option('--workers <n>', 'local worker processes (0: everything in this process)', String(availableParallelism()))
    .option('--out <dir>', 'run directory (default: runs/<timestamp>)')
    .option('--resume <dir>', 'continue the run in this directory from its last checkpoint')
    .option('--backend <name>', 'backend of the workers (default: the best that loads)')
    .option('--token-file <file>', 'shared secret of the local cluster, so that `dptrain dashboard --token-file` can watch it (default: a random one per run)')
    .option(
      '--max-restarts <n>',
      'restarts of lost local workers for the whole run; then it goes on with the survivors',
      String(WORKER_SUPERVISOR_DEFAULTS.maxRestarts),
    )
    .action(async (flags: SingleFlags) => {
      const maxRestarts = countFlag(flags.maxRestarts, '--max-restarts');
      const config = toRunConfig(flags);
      if (printConfigIfAsked(flags, config)) return;
      const n = countFlag(flags.workers ?? String(availableParallelism()), '--workers');
      const runDir = runDirOf(flags);
      const bus = new EventBus();
      const views = await attachRunViews(bus, {
        command: 'single',
        runDir,
        plain: flags.plain,
        logEvery: countFlag(flags.logEvery, '--log-every', 1),
        minWorkers: Math.max(1, n),
        charts: flags.charts,
        ...(flags.metricsPort !== undefined ? { metricsPort: Number(flags.metricsPort) } : {}),
        ...(flags.metricsHost !== undefined ? { metricsHost: flags.metricsHost } : {}),
      });
      const resumeHint = `dptrain single --resume ${runDir} and the same flags`;
      await runUntilStopped(
        views,
        resumeHint,
        (stopSignal) =>
          runSingleNode({
            config,
            runDir,
            workers: n,
            bus,
            resume: flags.resume !== undefined,
            ...(flags.backend ? { backend: flags.backend } : {}),
            ...(flags.tokenFile !== undefined ? { token: resolveSharedToken({ tokenFile: flags.tokenFile }) } : {}),
            protocol: toProtocolOptions(flags),
            executor: toStepGuardOptions(flags),
            ...(toShardOptions(flags) ? { shards: toShardOptions(flags) } : {}),
            httpHandlers: [views.httpHandler],
            // the workers' own messages would tear the dashboard: there, their lines go to the run log and their
            // warnings, joins and losses to the events pane
            workerOutput: views.mode === 'dashboard' ? 'events' : 'inherit',
            say: (line) => views.say(line),
            maxRestarts,
            stopSignal,
          }),
        (result) => `run directory ${path.resolve(runDir)} (${result.steps} steps)`,
      );
    });
}
