/**
 * The run's arithmetic precision (`--precision fp32|bf16|auto`). bf16 exists on the native oneDNN backend only, on a
 * CPU with AVX512-BF16 or AMX: its convolutions and matmuls take bf16 operands and accumulate in fp32; master
 * weights, averaged gradients, Adam, the loss and softmax stay fp32. `auto` is resolved once where the run starts
 * (the coordinator, or `train`) and the resolved value travels in the run's config, so every worker runs the same.
 */
import { DptrainError } from '../errors.js';
import { BACKEND_PACKAGES, importPackage } from './loaders.js';
import type { BackendName } from './types.js';

/** What a run computes in. */
export type Precision = 'fp32' | 'bf16';
/** What `--precision` accepts. */
export type PrecisionSetting = Precision | 'auto';

/** bf16 instructions of a CPU: AMX tiles, AVX512-BF16 dot products, or none. */
export type Bf16Isa = 'amx' | 'avx512_bf16' | null;

interface NativePrecisionModule {
  setNativePrecision(p: Precision): Precision;
  nativeBf16Isa(): Bf16Isa;
}

async function nativeModule(): Promise<NativePrecisionModule> {
  return (await importPackage(BACKEND_PACKAGES.native)) as unknown as NativePrecisionModule;
}

/**
 * The bf16 instructions the native backend may use here: oneDNN's ISA query (which also knows what the OS enables,
 * e.g. AMX tiles); null where the native addon does not load (no backend here could use them).
 */
export async function detectBf16Isa(): Promise<Bf16Isa> {
  try {
    return (await nativeModule()).nativeBf16Isa();
  } catch {
    return null;
  }
}

export interface ResolvePrecisionOptions {
  /**
   * Backend that runs the kernels; 'cluster' where they run on workers (a coordinator), which then resolves `auto`
   * as if its workers were native on its own CPU: bf16 where the native addon loads on the coordinator and oneDNN
   * finds AVX512-BF16 or AMX there. Default: 'cluster'.
   */
  backend?: BackendName | 'cluster';
  /** This machine's bf16 instructions. Default: detectBf16Isa(). */
  bf16Isa?: Bf16Isa;
}

/** Why `bf16` cannot run on `backend` with these instructions; null when it can. */
export function bf16Unsupported(backend: BackendName | 'cluster', isa: Bf16Isa): string | null {
  if (backend !== 'native' && backend !== 'cluster') {
    return `--precision bf16 runs on the native backend only; backend '${backend}' has no bf16 kernels (use --precision fp32 or auto)`;
  }
  if (isa === null) return '--precision bf16 needs a CPU with AVX512-BF16 or AMX; this one has neither (use --precision fp32 or auto)';
  return null;
}

/**
 * Resolves `--precision` once where the run starts: fp32 stays fp32; bf16 is checked (E_PRECISION naming the
 * backend or the CPU when it cannot run); auto is bf16 where bf16 can run (native backend, AVX512-BF16 or AMX), else fp32.
 */
export async function resolvePrecision(setting: PrecisionSetting, options: ResolvePrecisionOptions = {}): Promise<Precision> {
  if (setting === 'fp32') return 'fp32';
  const backend = options.backend ?? 'cluster';
  if (backend !== 'native' && backend !== 'cluster') {
    if (setting === 'auto') return 'fp32';
    throw new DptrainError('E_PRECISION', bf16Unsupported(backend, null)!, { backend, precision: setting });
  }
  const isa = options.bf16Isa !== undefined ? options.bf16Isa : await detectBf16Isa();
  const why = bf16Unsupported(backend, isa);
  if (why === null) return 'bf16';
  if (setting === 'auto') return 'fp32';
  throw new DptrainError('E_PRECISION', why, { backend, precision: setting });
}

/**
 * Makes the active backend compute in `precision` (the native backend switches its kernels; every other backend is
 * fp32 already). Throws E_PRECISION, naming the backend or the CPU, where bf16 cannot run.
 */
export async function applyPrecision(precision: Precision, backend: BackendName): Promise<void> {
  if (backend !== 'native') {
    if (precision === 'fp32') return;
    throw new DptrainError('E_PRECISION', bf16Unsupported(backend, null)!, { backend, precision });
  }
  const mod = await nativeModule();
  if (precision === 'bf16') {
    const why = bf16Unsupported(backend, mod.nativeBf16Isa());
    if (why !== null) throw new DptrainError('E_PRECISION', why, { backend, precision });
  }
  mod.setNativePrecision(precision);
}

/** tfjs backend name -> dptrain backend name (for a worker that was not told which backend it loaded). */
const TF_BACKENDS: Record<string, BackendName> = { 'dptrain-native': 'native', wasm: 'wasm', cpu: 'cpu', tensorflow: 'tensorflow' };

/**
 * What a worker reports at join for the run's precision: the precision it set its backend to, or why it could not
 * (the coordinator then refuses it). A config still at 'auto' is resolved on the worker's own CPU.
 */
export async function workerPrecision(
  setting: PrecisionSetting,
  backend: BackendName | undefined,
  tfBackend?: string,
): Promise<{ precision: Precision } | { precisionError: string }> {
  const name = backend ?? (tfBackend !== undefined ? TF_BACKENDS[tfBackend] : undefined);
  try {
    const precision = await resolvePrecision(setting, { backend: name ?? 'cpu' });
    if (name !== undefined) await applyPrecision(precision, name);
    return { precision };
  } catch (e) {
    return { precisionError: e instanceof Error ? e.message : String(e) };
  }
}

/**
 * Resolves `config.precision` once, where a run starts: for a backend in this process (`train`, `predict`, in-process
 * `single`) it also sets that backend to it; for 'cluster' (a coordinator) it only resolves, and each worker sets
 * its own at join. Returns the config with the resolved precision.
 */
export async function withRunPrecision<C extends { precision: PrecisionSetting }>(
  config: C,
  backend: BackendName | 'cluster',
): Promise<C & { precision: Precision }> {
  const precision = await resolvePrecision(config.precision, { backend });
  if (backend !== 'cluster') await applyPrecision(precision, backend);
  return { ...config, precision };
}
