import type { Command } from 'commander';
import { DptrainError, startBackend } from '@dptrain/core';
import { onParentGone, startWorker, UPSTREAM_DEFAULTS, WORKER_DEFAULTS, type WorkerHandle } from '@dptrain/worker';
import { addProtocolFlags, resolveSharedToken, toProtocolOptions, type ProtocolFlagValues } from '@dptrain/coordinator';
import { agentFromFlags, addAgentFlags, type AgentFlagValues } from '../agent-flags.js';
import { countFlag } from '../flag-count.js';
import { workerFailureLine } from '../report-error.js';

interface WorkerFlags extends ProtocolFlagValues, AgentFlagValues {
  connect: string;
  data?: string;
  token?: string;
  tokenFile?: string;
  backend?: string;
  ca?: string;
  batchCapacity?: string;
  name?: string;
  cacheDir?: string;
  stallLimitMs?: string;
  giveUpAfter?: string;
  exitWithParent?: boolean;
}

function positiveMs(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new DptrainError('E_CONFIG', `${flag}: '${v}' is not a positive number of milliseconds`);
  return n;
}

export function register(program: Command): void {
  const cmd = program
    .command('worker')
    .description('join a coordinator and compute gradients on this machine; with --nproc-per-node, one agent for the whole machine');
  addAgentFlags(addProtocolFlags(cmd))
    .requiredOption('--connect <url>', 'coordinator URL, ws://HOST:PORT or wss://HOST:PORT')
    .option('--data <dir>', "this machine's copy of the data (default: the coordinator's path)")
    .option('--token <secret>', 'shared secret (default: $DPTRAIN_TOKEN); shows in ps, prefer --token-file')
    .option('--token-file <file>', 'read the shared secret from this file')
    .option('--backend <name>', 'force a backend: tensorflow-gpu, tensorflow, native, wasm, cpu')
    .option('--ca <file>', 'PEM CA certificate to trust for wss://')
    .option('--batch-capacity <n>', `largest slice of a step this worker takes (an agent: each of its workers; default ${WORKER_DEFAULTS.batchCapacity})`)
    .option('--name <name>', 'name reported to the coordinator (default: the host name)')
    .option('--cache-dir <dir>', 'frozen-feature cache folder shared with the other workers of this machine (default: memory only)')
    .option('--stall-limit-ms <ms>', 'heartbeats stop once the main thread made no progress this long (default 600000; 3600000 on a PTX-JIT GPU)')
    .option(
      '--give-up-after <s>',
      `exit (status 2) after this many seconds without reaching the coordinator (default ${UPSTREAM_DEFAULTS.giveUpAfterMs / 1000}); the cluster launchers set more, to outlive a coordinator restart`,
    )
    .option('--exit-with-parent', 'exit when stdin closes: the parent that started this worker (dptrain single) is gone')
    .action(async (flags: WorkerFlags) => {
      const giveUpAfter = flags.giveUpAfter === undefined ? undefined : Number(flags.giveUpAfter);
      if (giveUpAfter !== undefined && (!Number.isFinite(giveUpAfter) || giveUpAfter <= 0))
        throw new DptrainError('E_CONFIG', `--give-up-after: '${flags.giveUpAfter}' is not a positive number of seconds`);
      const token = resolveSharedToken(flags);
      const p = toProtocolOptions(flags);
      const link = {
        url: flags.connect,
        token,
        ...(flags.name ? { host: flags.name } : {}),
        ...(flags.ca ? { ca: flags.ca } : {}),
        ...(flags.stallLimitMs ? { stallLimitMs: positiveMs(flags.stallLimitMs, '--stall-limit-ms') } : {}),
        ...(p.heartbeatIntervalMs ? { heartbeatIntervalMs: p.heartbeatIntervalMs } : {}),
        ...(p.lostAfterMs ? { lostAfterMs: p.lostAfterMs } : {}),
        ...(giveUpAfter !== undefined ? { giveUpAfterMs: giveUpAfter * 1000 } : {}),
      };
      let handle: WorkerHandle;
      if (flags.nprocPerNode !== undefined) {
        // an agent: no backend of its own; its local workers pick theirs
        handle = await agentFromFlags(flags, link);
      } else {
        const backend = await startBackend(flags.backend, (line) => process.stderr.write(`dptrain worker: ${line}\n`));
        process.stderr.write(
          `dptrain worker: backend ${backend.name} (${backend.device})${backend.gpu ? `, tfjs-node-gpu: ${backend.gpu.tfjsNodeGpu ?? 'unknown'}` : ''}\n`,
        );
        handle = startWorker({
          ...link,
          backend,
          ...(flags.batchCapacity !== undefined ? { batchCapacity: countFlag(flags.batchCapacity, '--batch-capacity', 1) } : {}),
          ...(flags.data ? { dataDir: flags.data } : {}),
          ...(flags.cacheDir ? { cacheDir: flags.cacheDir } : {}),
        });
      }
      const stop = (): void => handle.stop();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      let orphaned = false;
      const unwatch = flags.exitWithParent
        ? onParentGone(() => {
            orphaned = true;
            process.stderr.write('dptrain worker: the parent process is gone; exiting\n');
            handle.stop();
          })
        : () => undefined;
      const exit = await handle.done;
      unwatch();
      if (orphaned) process.exitCode = 1;
      process.stderr.write(`dptrain worker: ${exit.reason}: ${exit.detail}\n`);
      if (exit.reason === 'refused' || exit.reason === 'gave_up') {
        process.stderr.write(`${workerFailureLine(exit)}\n`);
        process.exitCode = 2;
      }
      // tfjs/wasm may keep handles open
      setTimeout(() => process.exit(), 100).unref();
    });
}
