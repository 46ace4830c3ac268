/**
 * The GPUs the NVIDIA driver reports, read with
 * `nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader,nounits`.
 * Drivers older than 510 refuse the `compute_cap` field: the query is then repeated without it and the compute
 * capability comes from the name table (gpu-support.ts). A missing or "[N/A]" column gives null.
 */
import { execFile } from 'node:child_process';
import { computeCapabilityByName, tfjsNodeGpuVerdict, type TfjsNodeGpuVerdict } from './gpu-support.js';

/** One GPU as `dptrain doctor --json` shows it. */
export interface GpuDescription {
  /** Index in nvidia-smi's order (what CUDA_VISIBLE_DEVICES numbers refer to). */
  index: number;
  name: string;
  /** "8.0", "9.0", ...; null when neither the driver nor the name table knows it. */
  computeCapability: string | null;
  /** Where the compute capability came from. */
  computeCapabilitySource: 'driver' | 'name' | 'unknown';
  /** Driver version, e.g. "535.104.05"; null when not reported. */
  driver: string | null;
  /** Total memory in MiB; null when not reported. */
  memoryMiB: number | null;
  /** What tfjs-node-gpu 4.22 does on it; null when the compute capability is unknown. */
  tfjsNodeGpu: TfjsNodeGpuVerdict | null;
}

export const NVIDIA_SMI_FIELDS = ['name', 'compute_cap', 'driver_version', 'memory.total'] as const;

export interface QueryGpusOptions {
  /** Runs nvidia-smi with these arguments; resolves with its stdout, or null when it is absent or fails. Default: execFile with a 10 s timeout. */
  run?: (args: string[]) => Promise<string | null>;
  /** Environment nvidia-smi is looked up in (PATH). Default: process.env. */
  env?: NodeJS.ProcessEnv;
}

const missing = (v: string | undefined): boolean => v === undefined || v === '' || /^\[?(N\/A|Not Supported|Unknown Error)\]?$/i.test(v);

/** Parses the CSV output of a `--query-gpu` call with the given fields (noheader, nounits). Pure. */
export function parseNvidiaSmi(csv: string, fields: readonly string[]): GpuDescription[] {
  const gpus: GpuDescription[] = [];
  for (const line of csv.split('\n')) {
    if (!line.trim()) continue;
    const cols = line.split(',').map((c) => c.trim());
    const col = (f: string): string | undefined => {
      const i = fields.indexOf(f);
      const v = i < 0 ? undefined : cols[i];
      return missing(v) ? undefined : v;
    };
    const name = col('name') ?? `NVIDIA GPU ${gpus.length}`;
    const fromDriver = col('compute_cap');
    const fromName = fromDriver ? null : computeCapabilityByName(name);
    const computeCapability = fromDriver ?? fromName;
    const mem = Number(col('memory.total'));
    gpus.push({
      index: gpus.length,
      name,
      computeCapability,
      computeCapabilitySource: fromDriver ? 'driver' : fromName ? 'name' : 'unknown',
      driver: col('driver_version') ?? null,
      memoryMiB: col('memory.total') !== undefined && Number.isFinite(mem) ? mem : null,
      tfjsNodeGpu: tfjsNodeGpuVerdict(computeCapability),
    });
  }
  return gpus;
}

function runNvidiaSmi(env: NodeJS.ProcessEnv): (args: string[]) => Promise<string | null> {
  return (args) =>
    new Promise((resolve) => {
      execFile('nvidia-smi', args, { timeout: 10_000, env }, (err, stdout) => resolve(err ? null : String(stdout)));
    });
}

const queryArgs = (fields: readonly string[]) => [`--query-gpu=${fields.join(',')}`, '--format=csv,noheader,nounits'];

/**
 * The GPUs of this machine; null when nvidia-smi is absent or fails (no NVIDIA driver). Never throws.
 * An old driver that refuses `compute_cap` is asked again without it.
 */
export async function queryGpus(options: QueryGpusOptions = {}): Promise<GpuDescription[] | null> {
  const run = options.run ?? runNvidiaSmi(options.env ?? process.env);
  const full = await run(queryArgs(NVIDIA_SMI_FIELDS));
  if (full !== null && !/not a valid field/i.test(full)) return parseNvidiaSmi(full, NVIDIA_SMI_FIELDS);
  const older = NVIDIA_SMI_FIELDS.filter((f) => f !== 'compute_cap');
  const out = await run(queryArgs(older));
  return out === null ? null : parseNvidiaSmi(out, older);
}
