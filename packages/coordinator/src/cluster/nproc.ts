import { availableParallelism } from 'node:os';
import { DptrainError, queryGpus, type GpuDescription } from '@dptrain/core';
import { allowedCpus } from './cpu-affinity.js';

/** `--nproc-per-node`: a count, one worker per visible GPU, or one per CPU this process may run on. */
export type NprocSpec = number | 'gpu' | 'cpu';

/** How an agent's local workers are laid out. */
export interface NodeLayout {
  /** How many local workers. */
  count: number;
  /** Extra environment of each worker slot (with `gpu`: its own CUDA_VISIBLE_DEVICES). */
  slotEnv: (slot: number) => Record<string, string>;
  /** Pin the workers to CPU shares as `single` does (`cpu` and counts; not `gpu`). */
  pinCpus: boolean;
  /** One line for the log: what was resolved and why. */
  describe: string;
}

/** Parses the flag's value: a positive count, `gpu` or `cpu`; E_CONFIG names anything else. */
export function parseNproc(value: string): NprocSpec {
  if (value === 'gpu' || value === 'cpu') return value;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new DptrainError('E_CONFIG', `--nproc-per-node: '${value}' is not a positive count, 'gpu' or 'cpu'`);
  return n;
}

/** The GPU ids CUDA_VISIBLE_DEVICES allows (null: unset, every GPU the driver reports). */
function visibleDevices(env: NodeJS.ProcessEnv): string[] | null {
  const v = env.CUDA_VISIBLE_DEVICES;
  if (v === undefined) return null;
  return v
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '' && x !== '-1');
}

export interface ResolveNprocOptions {
  /** The GPUs of this machine (null: no NVIDIA driver). Default: nvidia-smi through core's queryGpus. */
  queryGpus?: () => Promise<GpuDescription[] | null>;
  /** Environment read for CUDA_VISIBLE_DEVICES. Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** CPUs this process may run on. Default: /proc/self/status, else availableParallelism(). */
  cpus?: () => number;
}

/**
 * Lays out an agent's workers: a count as given; `cpu` one per CPU this process may run on, pinned; `gpu` one per
 * visible GPU (CUDA_VISIBLE_DEVICES when set, else every GPU nvidia-smi lists), each seeing only its own.
 * E_CONFIG when `gpu` finds none.
 */
export async function resolveNproc(spec: NprocSpec, opts: ResolveNprocOptions = {}): Promise<NodeLayout> {
  const none = (): Record<string, string> => ({});
  if (typeof spec === 'number') return { count: spec, slotEnv: none, pinCpus: true, describe: `${spec} local worker(s)` };
  if (spec === 'cpu') {
    const count = (opts.cpus ?? (() => allowedCpus()?.length ?? availableParallelism()))();
    return { count, slotEnv: none, pinCpus: true, describe: `${count} local worker(s), one per CPU` };
  }
  const env = opts.env ?? process.env;
  let ids = visibleDevices(env);
  if (ids === null) {
    const gpus = await (opts.queryGpus ?? (() => queryGpus({ env })))();
    ids = (gpus ?? []).map((g) => String(g.index));
  }
  if (ids.length === 0) {
    throw new DptrainError(
      'E_CONFIG',
      `--nproc-per-node gpu: no GPU is visible (${env.CUDA_VISIBLE_DEVICES !== undefined ? `CUDA_VISIBLE_DEVICES='${env.CUDA_VISIBLE_DEVICES}'` : 'nvidia-smi lists none'}); give a count or 'cpu'`,
    );
  }
  const list = ids;
  return {
    count: list.length,
    slotEnv: (slot) => ({ CUDA_VISIBLE_DEVICES: list[slot]! }),
    pinCpus: false,
    describe: `${list.length} local worker(s), one per GPU (${list.join(', ')})`,
  };
}
