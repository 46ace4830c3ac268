import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { localWorkerEnv, pinWorkersFromEnv } from '../env.js';
import { allowedCpus, cpuSets, hasTaskset, pinnedArgv } from './cpu-affinity.js';

/** The CLI entry that local worker processes run. */
export const DPTRAIN_BIN = fileURLToPath(new URL('../../../cli/bin/dptrain.js', import.meta.url));

export interface LocalWorkersOptions {
  /** Coordinator URL. */
  url: string;
  /** Shared secret, passed in the environment (DPTRAIN_TOKEN), never on the command line. */
  token: string;
  /** How many worker processes. */
  count: number;
  /** Data directory for the workers. */
  dataDir: string;
  /** Extra `dptrain worker` arguments (e.g. --backend wasm). Default: none. */
  args?: string[];
  /** Where the children's stdout and stderr go: 'inherit', 'ignore', or 'pipe' (read them: see worker-output). Default 'inherit'. */
  stdio?: 'inherit' | 'ignore' | 'pipe';
  /**
   * Each worker exits by itself when this process dies, even by `kill -9`: it gets a stdin pipe from this process
   * and `--exit-with-parent` (the kernel closes the pipe when its writer dies). The workers also get their own
   * process group, so a terminal's Ctrl-C reaches only this process, which finishes the step, checkpoints and then
   * stops them. Default true.
   */
  exitWithParent?: boolean;
  /**
   * Pin worker i to its own share of this process's CPUs (Linux `taskset`), as Intel MPI pins its ranks by
   * default (horovodrun and torchrun bind none unless asked): a worker's threads (V8's garbage collector helpers included) then stay on its cores, and
   * the caches stay warm. Done only with at least one CPU per worker and `taskset` present.
   * Default: true unless $DPTRAIN_PIN_WORKERS is 0.
   */
  pinCpus?: boolean;
  /** The program the workers run, argv without the worker's flags (an agent's `--worker-command`). Default: this node and `dptrain worker`. */
  command?: string[];
  /** Extra environment of worker `slot` (e.g. its CUDA_VISIBLE_DEVICES). Default: none. */
  slotEnv?: (slot: number) => Record<string, string>;
}

/** The CPU sets the workers get pinned to, or null when they are not pinned (and why not). */
export function workerCpuSets(opts: Pick<LocalWorkersOptions, 'count' | 'pinCpus'>): { sets: number[][] | null; reason?: string } {
  const pin = opts.pinCpus ?? pinWorkersFromEnv();
  if (!pin) return { sets: null, reason: 'pinning is off' };
  const cpus = allowedCpus();
  if (!cpus) return { sets: null, reason: 'no /proc/self/status (not Linux)' };
  const sets = cpuSets(cpus, opts.count);
  if (!sets) return { sets: null, reason: `${opts.count} workers on ${cpus.length} CPUs` };
  if (!hasTaskset()) return { sets: null, reason: 'taskset (util-linux) not found' };
  return { sets };
}

/** Starts `dptrain worker` child processes (the same code path as remote workers, over loopback). */
export function spawnLocalWorkers(opts: LocalWorkersOptions): ChildProcess[] {
  const sets = workerCpuSets(opts).sets;
  return Array.from({ length: opts.count }, (_, i) => spawnLocalWorker(opts, i, sets));
}

/** Starts local worker `slot` of `opts.count` (pinned to its share of the CPUs when `sets` are given). */
export function spawnLocalWorker(opts: LocalWorkersOptions, slot: number, sets: number[][] | null = workerCpuSets(opts).sets): ChildProcess {
  // One process per core measured faster than threads inside one process (docs/speed.md): give each local
  // worker its share of the cores for the native backend's oneDNN/OpenMP threads, unless the user set them.
  const threads = Math.max(1, Math.floor(availableParallelism() / Math.max(1, opts.count)));
  const withParent = opts.exitWithParent ?? true;
  const argv = [
    ...(opts.command ?? [process.execPath, DPTRAIN_BIN, 'worker']),
    '--connect',
    opts.url,
    '--data',
    opts.dataDir,
    ...(withParent ? ['--exit-with-parent'] : []),
    ...(opts.args ?? []),
  ];
  const [cmd, ...args] = pinnedArgv(argv, sets?.[slot]);
  const out = opts.stdio ?? 'inherit';
  return spawn(cmd!, args, {
    env: { ...localWorkerEnv({ token: opts.token, count: opts.count, threads }), ...opts.slotEnv?.(slot) },
    stdio: [withParent ? 'pipe' : 'ignore', out, out],
    detached: withParent,
  });
}

export interface LocalAgentOptions {
  /** Coordinator URL. */
  url: string;
  /** Shared secret, passed in the environment (DPTRAIN_TOKEN), never on the command line. */
  token: string;
  /** Data directory of the agent and its workers. */
  dataDir: string;
  /** Its local workers (`--nproc-per-node`). */
  workers: number;
  /** Restarts of lost local workers for the whole run (`--max-restarts`). */
  maxRestarts: number;
  /** Extra `dptrain worker` arguments, which the agent hands on to its workers (e.g. --backend wasm). Default: none. */
  args?: string[];
  /** Where its stdout and stderr (and its workers') go. Default 'inherit'. */
  stdio?: 'inherit' | 'ignore' | 'pipe';
}

/**
 * Starts one local agent, `dptrain worker --nproc-per-node N`, which starts (and pins, and restarts) the workers
 * itself. Like a local worker it exits with this process (a stdin pipe and `--exit-with-parent`, its workers with
 * it) and has its own process group. It is not pinned and sets no thread counts: its workers get their share.
 */
export function spawnLocalAgent(opts: LocalAgentOptions): ChildProcess {
  const args = [
    DPTRAIN_BIN,
    'worker',
    '--connect',
    opts.url,
    '--data',
    opts.dataDir,
    '--exit-with-parent',
    '--nproc-per-node',
    String(opts.workers),
    '--max-restarts',
    String(opts.maxRestarts),
    ...(opts.args ?? []),
  ];
  const out = opts.stdio ?? 'inherit';
  return spawn(process.execPath, args, { env: { ...process.env, DPTRAIN_TOKEN: opts.token }, stdio: ['pipe', out, out], detached: true });
}

/** Stops children still running (SIGTERM, then SIGKILL after `graceMs`). */
export async function stopLocalWorkers(children: ChildProcess[], graceMs = 3000): Promise<void> {
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          const t = setTimeout(() => c.kill('SIGKILL'), graceMs);
          c.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
          c.kill('SIGTERM');
        }),
    ),
  );
}
