import * as path from 'node:path';
import type { Command } from 'commander';
import { EventBus } from '@dptrain/core';
import { addTrainingFlags, toRunConfig, type TrainingFlagValues } from '../training-flags.js';
import { addProtocolFlags, attachClusterConsole, parseListen, resolveToken, runCoordinator, toProtocolOptions, type ProtocolFlagValues } from '../../cluster/index.js';

interface CoordinatorFlags extends TrainingFlagValues, ProtocolFlagValues {
  listen: string;
  minWorkers: string;
  token?: string;
  resume?: string;
  out?: string;
  tlsCert?: string;
  tlsKey?: string;
}

export function register(program: Command): void {
  const cmd = program
    .command('coordinator')
    .description('run the coordinator of a cluster: workers connect with `dptrain worker --connect ws://HOST:PORT`');
  addTrainingFlags(cmd);
  addProtocolFlags(cmd)
    .option('--listen <host:port>', 'address to listen on', '0.0.0.0:7420')
    .option('--min-workers <k>', 'training waits while fewer workers are connected', '1')
    .option('--token <secret>', 'shared secret for workers and observers (default: $DPTRAIN_TOKEN)')
    .option('--out <dir>', 'run directory (default: runs/<timestamp>)')
    .option('--resume <dir>', 'continue the run in this directory from its last checkpoint')
    .option('--tls-cert <file>', 'PEM certificate: serve wss://')
    .option('--tls-key <file>', 'PEM private key for --tls-cert')
    .action(async (flags: CoordinatorFlags) => {
      const config = toRunConfig(flags);
      const { host, port } = parseListen(flags.listen);
      if (!!flags.tlsCert !== !!flags.tlsKey) throw new Error('--tls-cert and --tls-key go together');
      const runDir = flags.resume ?? flags.out ?? path.join('runs', new Date().toISOString().replace(/[:.]/g, '-'));
      const bus = new EventBus();
      attachClusterConsole(bus);
      const { summary } = await runCoordinator({
        config,
        runDir,
        token: resolveToken(flags.token),
        host,
        port,
        bus,
        minWorkers: Number(flags.minWorkers),
        resume: flags.resume !== undefined,
        protocol: toProtocolOptions(flags),
        ...(flags.tlsCert && flags.tlsKey ? { tls: { cert: flags.tlsCert, key: flags.tlsKey } } : {}),
        onListening: (url) => {
          process.stderr.write(`coordinator listening on ${url}; run directory ${path.resolve(runDir)}\n`);
        },
      });
      process.stderr.write(`cluster: ${summary.workersJoined} worker joins, ${summary.workersLost.length} lost, ${Object.values(summary.framesRejected).reduce((a, b) => a + b, 0)} frames rejected\n`);
    });
}
