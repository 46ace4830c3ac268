import type { Command } from 'commander';
import { DptrainError } from '@dptrain/core';
import { onParentGone } from '@dptrain/worker';
import { addProtocolFlags, parseListen, resolveSharedToken, toProtocolOptions, type ProtocolFlagValues } from '@dptrain/coordinator';
import { startShard } from '@dptrain/coordinator';

interface ShardFlags extends ProtocolFlagValues {
  connect: string;
  token?: string;
  tokenFile?: string;
  listen: string;
  advertise?: string;
  ca?: string;
  tlsCert?: string;
  tlsKey?: string;
  exitWithParent?: boolean;
}

export function register(program: Command): void {
  const cmd = program
    .command('shard')
    .description('serve one shard of the sharded summation service (`dptrain coordinator --shards S`): merge and update a range of the weights');
  addProtocolFlags(cmd)
    .requiredOption('--connect <url>', 'coordinator URL, ws://HOST:PORT or wss://HOST:PORT')
    .option('--token <secret>', 'shared secret (default: $DPTRAIN_TOKEN); shows in ps, prefer --token-file')
    .option('--token-file <file>', 'read the shared secret from this file')
    .option('--listen <host:port>', 'address the workers reach this shard on', '0.0.0.0:0')
    .option('--advertise <host>', 'host name or address of this machine that the workers can reach (default: the --listen host, 127.0.0.1 for 0.0.0.0)')
    .option('--ca <file>', "PEM CA certificate to trust for the coordinator's wss://")
    .option('--tls-cert <file>', "PEM certificate: serve the workers over wss:// (the coordinator's)")
    .option('--tls-key <file>', 'PEM private key for --tls-cert')
    .option('--exit-with-parent', 'exit when stdin closes: the parent that started this shard (dptrain single) is gone')
    .action(async (flags: ShardFlags) => {
      if (!!flags.tlsCert !== !!flags.tlsKey) throw new DptrainError('E_CONFIG', '--tls-cert and --tls-key go together');
      const { host, port } = parseListen(flags.listen);
      const handle = await startShard({
        url: flags.connect,
        token: resolveSharedToken(flags),
        host,
        port,
        protocol: toProtocolOptions(flags),
        ...(flags.advertise ? { advertiseHost: flags.advertise } : {}),
        ...(flags.ca ? { ca: flags.ca } : {}),
        ...(flags.tlsCert && flags.tlsKey ? { tls: { cert: flags.tlsCert, key: flags.tlsKey } } : {}),
      });
      const stop = (): void => void handle.stop();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      const unwatch = flags.exitWithParent ? onParentGone(stop) : () => undefined;
      const exit = await handle.done;
      unwatch();
      process.stderr.write(`dptrain shard: ${exit.reason}: ${exit.detail}\n`);
      if (exit.reason === 'refused') process.exitCode = 2;
      setTimeout(() => process.exit(), 100).unref();
    });
}
