/**
 * What the tensorflow-gpu loader checks before it loads TensorFlow: the compute capability of the GPUs this process
 * will see (refused when tfjs-node-gpu 4.22 cannot run on one, a warning when it runs only through the PTX JIT) and
 * GPU memory growth when the GPU is shared. The CUDA/cuDNN check (gpu.ts assessGpu) follows once TensorFlow loaded.
 */
import { DptrainError } from '../errors.js';
import { explainVerdict, type TfjsNodeGpuVerdict } from './gpu-support.js';
import { applyMemoryGrowth, countOtherGpuProcesses } from './memory-growth.js';
import { queryGpus, type GpuDescription } from './nvidia-smi.js';

/** The GPU facts a worker reports at join (so the coordinator can, e.g., give a PTX-JIT first step more time). */
export interface GpuSupport {
  /** Name of the first visible GPU (the one TensorFlow's /gpu:0 is). */
  name: string;
  /** Its compute capability, null when unknown. */
  computeCapability: string | null;
  /** The worst verdict over the visible GPUs; null when a compute capability is unknown. */
  tfjsNodeGpu: TfjsNodeGpuVerdict | null;
}

export interface GpuPreflightResult {
  /** Null when nvidia-smi is absent (the later CUDA check then says there is no driver). */
  support: GpuSupport | null;
  /** Lines to show the user before TensorFlow loads (ptx-jit, unknown capability, memory growth). */
  notes: string[];
}

export interface GpuPreflightOptions {
  /** Environment read (CUDA_VISIBLE_DEVICES, PATH) and changed (TF_FORCE_GPU_ALLOW_GROWTH). Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** The GPUs of the machine. Default: queryGpus (nvidia-smi). */
  gpus?: GpuDescription[] | null;
  /** Other processes computing on the visible GPUs. Default: countOtherGpuProcesses (nvidia-smi). */
  otherGpuProcesses?: number;
}

/** The GPUs CUDA_VISIBLE_DEVICES leaves visible, in CUDA's order (all of them for UUIDs or an unset variable). */
export function visibleGpus(gpus: GpuDescription[], cudaVisibleDevices: string | undefined): GpuDescription[] {
  const cvd = cudaVisibleDevices?.trim();
  if (cvd === undefined) return gpus;
  const picked: GpuDescription[] = [];
  for (const part of cvd.split(',').map((p) => p.trim())) {
    if (!/^\d+$/.test(part)) return gpus; // UUIDs / MIG names: not mapped here, judge every GPU
    const g = gpus[Number(part)];
    if (!g) break; // CUDA stops at the first invalid index
    picked.push(g);
  }
  return picked;
}

const RANK: Record<string, number> = { native: 0, 'ptx-jit': 1, null: 2, unsupported: 3 };

/** Refuses (E_BACKEND_GPU_UNSUPPORTED) or warns about the visible GPUs; sets memory growth when shared. */
export async function preflightTfjsNodeGpu(options: GpuPreflightOptions = {}): Promise<GpuPreflightResult> {
  const env = options.env ?? process.env;
  const gpus = options.gpus !== undefined ? options.gpus : await queryGpus({ env });
  if (!gpus) return { support: null, notes: [] };
  const visible = visibleGpus(gpus, env.CUDA_VISIBLE_DEVICES);
  if (visible.length === 0) return { support: null, notes: [] };
  const notes: string[] = [];
  const bad = visible.filter((g) => g.tfjsNodeGpu === 'unsupported');
  if (bad.length > 0) {
    throw new DptrainError(
      'E_BACKEND_GPU_UNSUPPORTED',
      bad.map((g) => `GPU ${g.index} ${g.name}: ${explainVerdict(g.tfjsNodeGpu, g.computeCapability)}`).join('; ') +
        ' (see `dptrain doctor` and docs/deploy.md for what runs on it)',
      { gpus: bad },
    );
  }
  for (const g of visible) {
    if (g.tfjsNodeGpu !== 'native') notes.push(`GPU ${g.index} ${g.name}: ${explainVerdict(g.tfjsNodeGpu, g.computeCapability)}`);
  }
  const others =
    options.otherGpuProcesses ??
    (await countOtherGpuProcesses(
      visible.map((g) => g.index),
      env,
    ));
  const growth = applyMemoryGrowth({ env, otherGpuProcesses: others });
  if (growth.message) notes.push(growth.message);
  const worst = [...visible].sort((a, b) => RANK[String(b.tfjsNodeGpu)]! - RANK[String(a.tfjsNodeGpu)]!)[0]!;
  const first = visible[0]!;
  return { support: { name: first.name, computeCapability: first.computeCapability, tfjsNodeGpu: worst.tfjsNodeGpu }, notes };
}
