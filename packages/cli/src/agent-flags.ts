import { Option, type Command } from 'commander';
import { DptrainError } from '@dptrain/core';
import { countFlag } from './flag-count.js';
import { AGENT_DEFAULTS, parseNproc, resolveNproc, startAgent, type AgentHandle, type AgentOptions } from '@dptrain/coordinator';

/** `dptrain worker` flags that make it an agent (one per machine) and what its local workers get. */
export interface AgentFlagValues {
  nprocPerNode?: string;
  maxRestarts: string;
  workerCommand?: string;
  restartDelayMs?: string;
  data?: string;
  backend?: string;
  cacheDir?: string;
  batchCapacity?: string;
  stallLimitMs?: string;
  shardHost?: string;
  shardTlsCert?: string;
  shardTlsKey?: string;
}

export function addAgentFlags(cmd: Command): Command {
  return cmd
    .option(
      '--nproc-per-node <n|gpu|cpu>',
      'run as the agent of this machine: one connection to the coordinator, and N local workers (gpu: one per visible GPU, cpu: one per CPU, pinned)',
    )
    .option(
      '--max-restarts <n>',
      'an agent: restarts of lost local workers for the whole run; then it goes on with the survivors',
      String(AGENT_DEFAULTS.maxRestarts),
    )
    .option(
      '--shard-host <address>',
      "an agent, --shards auto: the address the other machines reach this agent's shard on (default: this machine's address on the route to the coordinator)",
    )
    .option('--shard-tls-cert <file>', 'an agent, --shards auto: PEM certificate its shard serves the other agents with (wss://; they trust it with --ca)')
    .option('--shard-tls-key <file>', 'an agent: PEM private key for --shard-tls-cert')
    .addOption(new Option('--worker-command <cmd>', 'an agent: run this command line instead of `dptrain worker` as each local worker').hideHelp())
    .addOption(new Option('--restart-delay-ms <ms>', 'an agent: pause before a local worker restart').hideHelp());
}

/** Starts the agent the flags describe; its local workers get the worker flags that concern them. */
export async function agentFromFlags(flags: AgentFlagValues, link: Omit<AgentOptions, 'layout'>): Promise<AgentHandle> {
  if (!!flags.shardTlsCert !== !!flags.shardTlsKey) throw new DptrainError('E_CONFIG', '--shard-tls-cert and --shard-tls-key go together');
  const layout = await resolveNproc(parseNproc(flags.nprocPerNode!));
  const workerArgs = [
    ...(flags.backend ? ['--backend', flags.backend] : []),
    ...(flags.cacheDir ? ['--cache-dir', flags.cacheDir] : []),
    ...(flags.stallLimitMs ? ['--stall-limit-ms', flags.stallLimitMs] : []),
    ...(flags.batchCapacity !== undefined ? ['--batch-capacity', String(countFlag(flags.batchCapacity, '--batch-capacity', 1))] : []),
  ];
  return startAgent({
    ...link,
    layout,
    workerArgs,
    maxRestarts: countFlag(flags.maxRestarts, '--max-restarts'),
    ...(flags.restartDelayMs !== undefined ? { restartDelayMs: countFlag(flags.restartDelayMs, '--restart-delay-ms') } : {}),
    ...(flags.data ? { dataDir: flags.data } : {}),
    ...(flags.shardHost ? { shardHost: flags.shardHost } : {}),
    ...(flags.shardTlsCert && flags.shardTlsKey ? { shardTls: { cert: flags.shardTlsCert, key: flags.shardTlsKey } } : {}),
    ...(flags.workerCommand ? { workerCommand: flags.workerCommand.split(/\s+/).filter(Boolean) } : {}),
  });
}
