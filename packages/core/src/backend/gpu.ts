/**
 * Is a GPU really usable by tfjs-node-gpu? tfjs-node-gpu 4.x wraps TensorFlow 2.9 built for CUDA 11
 * and cuDNN 8; when those libraries are missing or of another major version, TensorFlow quietly
 * creates only its CPU device and tfjs-node-gpu trains on the CPU. This module gathers the facts
 * (TensorFlow's own device verdict, CUDA_VISIBLE_DEVICES, the driver's GPU list, the CUDA/cuDNN
 * libraries on the loader path) and turns them into a plain verdict.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { queryGpus, type GpuDescription } from './nvidia-smi.js';

/** Library majors tfjs-node-gpu 4.22 (TensorFlow 2.9.1) was built against. */
export const EXPECTED_CUDA_MAJOR = 11;
export const EXPECTED_CUDNN_MAJOR = 8;

export interface GpuFacts {
  /** TensorFlow's own answer (the binding's isUsingGpuDevice), or undefined when not available. */
  tfUsesGpu: boolean | undefined;
  /** Value of CUDA_VISIBLE_DEVICES (undefined when unset). */
  cudaVisibleDevices: string | undefined;
  /** GPU names the NVIDIA driver reports; null when no NVIDIA driver was found. */
  gpus: string[] | null;
  /** Major versions of every libcudart.so.N found on the loader path. */
  cudartMajors: number[];
  /** Major versions of every libcudnn.so.N found on the loader path. */
  cudnnMajors: number[];
  /** The GPUs with compute capability, driver and memory (nvidia-smi); null when nvidia-smi is absent. Default: not gathered. */
  gpuDetails?: GpuDescription[] | null;
  /** Versions of the CUDA runtime and cuDNN found, preferring the majors tfjs-node-gpu needs. Default: not gathered. */
  cudaVersions?: CudaVersions;
}

/** CUDA runtime and cuDNN versions found on the loader path (the most precise each file name tells), or null. */
export interface CudaVersions {
  /** e.g. "11.2.152" (from libcudart.so.11.2.152) or "11.0" (a soname only); null when none is found. */
  runtime: string | null;
  /** e.g. "8.1.1" (from libcudnn.so.8.1.1); null when none is found. */
  cudnn: string | null;
}

export interface GpuVerdict {
  /** Whether training will really run on a GPU. */
  usable: boolean;
  /** Device in words, e.g. "GPU 0: NVIDIA H100 80GB HBM3 (CUDA 11, cuDNN 8)" or "cpu (TensorFlow)". */
  device: string;
  /** Why not, in plain words (only when not usable). */
  reason?: string;
}

const listMajors = (m: number[]) => (m.length ? m.map((v) => `${v}.x`).join(', ') : 'none found');

/** Turns gathered facts into a verdict. Pure, so every combination is testable. */
export function assessGpu(f: GpuFacts): GpuVerdict {
  const cuda = f.cudartMajors.includes(EXPECTED_CUDA_MAJOR);
  const cudnn = f.cudnnMajors.includes(EXPECTED_CUDNN_MAJOR);
  const problems: string[] = [];
  const cvd = f.cudaVisibleDevices?.trim();
  if (cvd !== undefined && (cvd === '' || cvd === '-1' || cvd.toLowerCase() === 'none' || cvd.toLowerCase() === 'nodevfiles')) {
    problems.push(`CUDA_VISIBLE_DEVICES=${JSON.stringify(f.cudaVisibleDevices)} hides every GPU`);
  }
  if (f.gpus === null) problems.push('no NVIDIA driver found (no /proc/driver/nvidia/gpus, no nvidia-smi)');
  else if (f.gpus.length === 0) problems.push('the NVIDIA driver reports no GPU');
  if (!cuda) {
    problems.push(`tfjs-node-gpu needs CUDA ${EXPECTED_CUDA_MAJOR}.x (libcudart.so.${EXPECTED_CUDA_MAJOR}), found: ${listMajors(f.cudartMajors)}`);
  }
  if (!cudnn) {
    problems.push(`tfjs-node-gpu needs cuDNN ${EXPECTED_CUDNN_MAJOR}.x (libcudnn.so.${EXPECTED_CUDNN_MAJOR}), found: ${listMajors(f.cudnnMajors)}`);
  }
  if (f.tfUsesGpu === true) {
    // TensorFlow itself placed its default device on a GPU: trust it over our library search.
    return { usable: true, device: gpuDevice(f) };
  }
  if (f.tfUsesGpu === false && problems.length === 0) {
    problems.push('TensorFlow created no GPU device (see its log lines above for the reason)');
  }
  if (problems.length === 0) return { usable: true, device: gpuDevice(f) };
  return {
    usable: false,
    device: 'cpu (TensorFlow)',
    reason: `tfjs-node-gpu loaded but no GPU is usable, it would silently train on the CPU: ${problems.join('; ')}`,
  };
}

function gpuDevice(f: GpuFacts): string {
  const first = f.gpus?.[0];
  const name = first ? `GPU 0: ${first}` : 'GPU 0';
  const more = f.gpus && f.gpus.length > 1 ? ` (+${f.gpus.length - 1} more)` : '';
  return `${name}${more} (CUDA ${EXPECTED_CUDA_MAJOR}, cuDNN ${EXPECTED_CUDNN_MAJOR})`;
}

export interface GatherGpuFactsOptions {
  /** Environment to read CUDA_VISIBLE_DEVICES and LD_LIBRARY_PATH from; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** The tfjs backend object of tfjs-node-gpu (tf.backend()), asked for its device; default none. */
  tfBackend?: unknown;
}

/** Collects the facts from this machine. Never throws. */
export async function gatherGpuFacts(options: GatherGpuFactsOptions = {}): Promise<GpuFacts> {
  const env = options.env ?? process.env;
  const libs = await findCudaLibraries(env);
  const gpuDetails = await queryGpus({ env });
  return {
    tfUsesGpu: tfUsesGpu(options.tfBackend),
    cudaVisibleDevices: env.CUDA_VISIBLE_DEVICES,
    gpus: gpuDetails ? gpuDetails.map((g) => g.name) : await listGpusFromProc(),
    cudartMajors: libs.cudart,
    cudnnMajors: libs.cudnn,
    gpuDetails,
    cudaVersions: {
      runtime: pickVersion(libs.cudartVersions, EXPECTED_CUDA_MAJOR),
      cudnn: pickVersion(libs.cudnnVersions, EXPECTED_CUDNN_MAJOR),
    },
  };
}

/** The most precise version of the wanted major, else of the highest major; null for none. */
export function pickVersion(versions: string[], wantedMajor: number): string | null {
  if (versions.length === 0) return null;
  const major = (v: string) => Number(v.split('.')[0]);
  const pool = versions.some((v) => major(v) === wantedMajor) ? versions.filter((v) => major(v) === wantedMajor) : versions;
  const parts = (v: string) => v.split('.').map(Number);
  return [...pool].sort((a, b) => {
    const [pa, pb] = [parts(a), parts(b)];
    for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
      const d = (pb[i] ?? -1) - (pa[i] ?? -1);
      if (d !== 0) return d;
    }
    return 0;
  })[0]!;
}

/** tfjs-node's backend exposes `isUsingGpuDevice` (a boolean, or on its binding a function). */
function tfUsesGpu(backend: unknown): boolean | undefined {
  if (backend == null || typeof backend !== 'object') return undefined;
  const b = backend as { isUsingGpuDevice?: unknown; binding?: { isUsingGpuDevice?: unknown } };
  try {
    if (typeof b.isUsingGpuDevice === 'boolean') return b.isUsingGpuDevice;
    if (typeof b.isUsingGpuDevice === 'function') return Boolean((b.isUsingGpuDevice as () => unknown).call(b));
    const fn = b.binding?.isUsingGpuDevice;
    if (typeof fn === 'function') return Boolean((fn as () => unknown).call(b.binding));
  } catch {
    return undefined;
  }
  return undefined;
}

/** GPU names from the driver's /proc files (when nvidia-smi is missing); null without a driver. */
async function listGpusFromProc(): Promise<string[] | null> {
  try {
    const dirs = await readdir('/proc/driver/nvidia/gpus');
    const names: string[] = [];
    for (const d of dirs) {
      const info = await readFile(path.join('/proc/driver/nvidia/gpus', d, 'information'), 'utf8').catch(() => '');
      names.push(/^Model:\s*(.+)$/m.exec(info)?.[1]?.trim() ?? `NVIDIA GPU ${d}`);
    }
    return names;
  } catch {
    return null;
  }
}

const LIB_DIRS = ['/usr/local/cuda/lib64', '/usr/local/cuda/lib', '/usr/lib/x86_64-linux-gnu', '/usr/lib64', '/usr/lib'];

/** Majors of libcudart.so.N / libcudnn.so.N in `ldconfig -p`, LD_LIBRARY_PATH and the usual dirs. */
export async function findCudaLibraries(
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ cudart: number[]; cudnn: number[]; cudartVersions: string[]; cudnnVersions: string[] }> {
  const names: string[] = [];
  const ld = (await run('ldconfig', ['-p'])) ?? (await run('/sbin/ldconfig', ['-p'])) ?? '';
  for (const line of ld.split('\n')) {
    const m = /^\s*(\S+)/.exec(line);
    if (m?.[1]) names.push(m[1]);
  }
  const dirs = [...(env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean), ...LIB_DIRS];
  try {
    for (const e of await readdir('/usr/local')) if (/^cuda-\d/.test(e)) dirs.push(`/usr/local/${e}/lib64`);
  } catch {
    // no /usr/local
  }
  for (const dir of dirs) {
    try {
      for (const f of await readdir(dir)) if (f.startsWith('libcud')) names.push(f);
    } catch {
      // missing dir
    }
  }
  return {
    cudart: majorsOf(names, 'libcudart'),
    cudnn: majorsOf(names, 'libcudnn'),
    cudartVersions: versionsOf(names, 'libcudart'),
    cudnnVersions: versionsOf(names, 'libcudnn'),
  };
}

/** Versions from file names like libcudart.so.11.2.152 / libcudnn.so.8.1.1 (distinct, in name order). */
export function versionsOf(names: string[], lib: string): string[] {
  const re = new RegExp(`^${lib}\\.so\\.(\\d+(?:\\.\\d+)*)$`);
  const set = new Set<string>();
  for (const n of names) {
    const m = re.exec(n);
    if (m?.[1]) set.add(m[1]);
  }
  return [...set];
}

/** Majors from file names like libcudart.so.11.0 / libcudnn.so.8 (not libcudnn_ops_infer...). */
export function majorsOf(names: string[], lib: string): number[] {
  const re = new RegExp(`^${lib}\\.so\\.(\\d+)`);
  const set = new Set<number>();
  for (const n of names) {
    const m = re.exec(n);
    if (m?.[1]) set.add(Number(m[1]));
  }
  return [...set].sort((a, b) => a - b);
}

function run(cmd: string, args: string[]): Promise<string | null> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 5000 }, (err, stdout) => resolve(err ? null : String(stdout)));
  });
}
