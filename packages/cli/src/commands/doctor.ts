import type { Command } from 'commander';
import {
  BACKEND_ORDER,
  BACKEND_PACKAGES,
  EXPECTED_CUDA_MAJOR,
  EXPECTED_CUDNN_MAJOR,
  explainVerdict,
  findCudaLibraries,
  pickVersion,
  queryGpus,
  resolveBackend,
  type BackendName,
  type GpuDescription,
  type TfjsNodeGpuVerdict,
} from '@dptrain/core';

/** `dptrain doctor --json`: what will happen on this machine. */
export interface DoctorReport {
  backends: { name: BackendName; available: boolean; reason: string | null }[];
  gpus: {
    index: number;
    name: string;
    computeCapability: string | null;
    driver: string | null;
    memoryMiB: number | null;
    tfjsNodeGpu: TfjsNodeGpuVerdict | null;
  }[];
  cuda: { runtime: string | null; cudnn: string | null };
  /** Lines the backends showed while loading (PTX-JIT warnings, memory growth). */
  notes: string[];
}

export interface DoctorOptions {
  /** The GPUs. Default: queryGpus() (nvidia-smi). */
  gpus?: GpuDescription[] | null;
}

/** Loads every backend in turn (the last one that loads stays active) and reads the GPUs and CUDA libraries. */
export async function gatherDoctorReport(options: DoctorOptions = {}): Promise<DoctorReport> {
  const gpus = options.gpus !== undefined ? options.gpus : await queryGpus();
  const notes: string[] = [];
  const backends: DoctorReport['backends'] = [];
  const jit = (gpus ?? []).some((g) => g.tfjsNodeGpu === 'ptx-jit');
  for (const name of BACKEND_ORDER) {
    if (name === 'tensorflow-gpu' && jit) {
      // its first start JIT-compiles TensorFlow's kernels (can take 30 min or more): only check it is installed
      const installed = isResolvable(BACKEND_PACKAGES[name]);
      backends.push({
        name,
        available: installed,
        reason: installed ? 'installed; not started by doctor: its first start on this GPU JIT-compiles PTX' : `${BACKEND_PACKAGES[name]} is not installed`,
      });
      continue;
    }
    try {
      await resolveBackend({ backend: name, log: (line) => notes.push(line) });
      backends.push({ name, available: true, reason: null });
    } catch (e) {
      backends.push({ name, available: false, reason: e instanceof Error ? e.message : String(e) });
    }
  }
  const libs = await findCudaLibraries();
  return {
    backends,
    gpus: (gpus ?? []).map((g) => ({
      index: g.index,
      name: g.name,
      computeCapability: g.computeCapability,
      driver: g.driver,
      memoryMiB: g.memoryMiB,
      tfjsNodeGpu: g.tfjsNodeGpu,
    })),
    cuda: { runtime: pickVersion(libs.cudartVersions, EXPECTED_CUDA_MAJOR), cudnn: pickVersion(libs.cudnnVersions, EXPECTED_CUDNN_MAJOR) },
    notes: [...new Set(notes)],
  };
}

function isResolvable(pkg: string): boolean {
  try {
    import.meta.resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

/** The report in words. */
export function formatDoctorReport(r: DoctorReport): string {
  const lines = ['backends:'];
  const width = Math.max(...r.backends.map((b) => b.name.length));
  for (const b of r.backends) lines.push(`  ${b.name.padEnd(width)}  ${b.available ? 'loads' : 'no   '}${b.reason ? `  ${b.reason.split('\n')[0]}` : ''}`);
  lines.push(r.gpus.length ? 'GPUs (nvidia-smi):' : 'GPUs: none (no nvidia-smi, or it lists no GPU)');
  for (const g of r.gpus) {
    const mem = g.memoryMiB === null ? '? MiB' : `${g.memoryMiB} MiB`;
    lines.push(`  ${g.index}  ${g.name}, compute capability ${g.computeCapability ?? 'unknown'}, driver ${g.driver ?? 'unknown'}, ${mem}`);
    lines.push(`     tfjs-node-gpu 4.22: ${g.tfjsNodeGpu ?? 'unknown'} (${explainVerdict(g.tfjsNodeGpu, g.computeCapability)})`);
  }
  lines.push(
    `CUDA runtime: ${r.cuda.runtime ?? 'not found'} (tfjs-node-gpu needs ${EXPECTED_CUDA_MAJOR}.x); cuDNN: ${r.cuda.cudnn ?? 'not found'} (needs ${EXPECTED_CUDNN_MAJOR}.x)`,
  );
  for (const n of r.notes) lines.push(`note: ${n}`);
  return lines.join('\n');
}

export function register(program: Command): void {
  program
    .command('doctor')
    .description('what will run on this machine: backends, GPUs (compute capability, tfjs-node-gpu verdict), CUDA and cuDNN')
    .option('--json', 'print the report as JSON')
    .action(async (flags: { json?: boolean }) => {
      const report = await gatherDoctorReport();
      process.stdout.write(`${flags.json ? JSON.stringify(report, null, 2) : formatDoctorReport(report)}\n`);
      // tfjs/wasm may keep handles open
      setTimeout(() => process.exit(), 100).unref();
    });
}
