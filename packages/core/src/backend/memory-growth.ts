/**
 * TensorFlow reserves nearly all the memory of every visible GPU when it starts, so a second process on the same
 * GPU fails to allocate. TF_FORCE_GPU_ALLOW_GROWTH=true makes it take memory as it needs it. The GPU image sets it;
 * a worker started elsewhere sets it itself when it is unset and the GPU is shared, before TensorFlow loads.
 */
import { execFile } from 'node:child_process';
import { localWorkerCount } from '../env.js';

export const ALLOW_GROWTH_VAR = 'TF_FORCE_GPU_ALLOW_GROWTH';

export interface MemoryGrowthFacts {
  /** The environment TensorFlow will read (changed in place when growth is switched on). */
  env: NodeJS.ProcessEnv;
  /** Other processes already computing on the GPUs this process will see (nvidia-smi --query-compute-apps). */
  otherGpuProcesses: number;
}

export interface MemoryGrowthDecision {
  /** Whether TF_FORCE_GPU_ALLOW_GROWTH was set by this call. */
  set: boolean;
  /** A line saying what was done and why (null when nothing needs saying). */
  message: string | null;
}

/** Sets TF_FORCE_GPU_ALLOW_GROWTH=true in `facts.env` when it is unset and the GPU is shared. */
export function applyMemoryGrowth(facts: MemoryGrowthFacts): MemoryGrowthDecision {
  const { env } = facts;
  if (env[ALLOW_GROWTH_VAR] !== undefined) return { set: false, message: null };
  const localWorkers = localWorkerCount(env);
  const why: string[] = [];
  if (Number.isFinite(localWorkers) && localWorkers > 1) why.push(`${localWorkers} local workers share this machine's GPUs`);
  if (facts.otherGpuProcesses > 0) why.push(`${facts.otherGpuProcesses} other process(es) already compute on the GPU`);
  if (why.length === 0) return { set: false, message: null };
  env[ALLOW_GROWTH_VAR] = 'true';
  return {
    set: true,
    message: `set ${ALLOW_GROWTH_VAR}=true (${why.join('; ')}): TensorFlow takes GPU memory as it needs it instead of all of it at start`,
  };
}

/**
 * How many processes other than this one compute on the GPUs of `indices` (nvidia-smi's numbering), 0 when
 * nvidia-smi is absent or fails. Never throws.
 */
export async function countOtherGpuProcesses(indices: number[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (indices.length === 0) return 0;
  const out = await new Promise<string | null>((resolve) =>
    execFile('nvidia-smi', ['-i', indices.join(','), '--query-compute-apps=pid', '--format=csv,noheader,nounits'], { timeout: 10_000, env }, (err, stdout) =>
      resolve(err ? null : String(stdout)),
    ),
  );
  if (out === null) return 0;
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^\d+$/.test(l) && Number(l) !== process.pid).length;
}
