/**
 * Picks the compute backend, onnxruntime-js style: try each in priority order, keep the first that
 * loads, and if none does, throw one error listing every backend and why it failed.
 */
import * as tf from '@tensorflow/tfjs';
import { DptrainError, isDptrainError } from '../errors.js';
import { DEFAULT_LOADERS, type BackendLoader } from './loaders.js';
import type { BackendInfo, BackendName } from './types.js';

/** Priority order when no backend is named. */
export const BACKEND_ORDER: readonly BackendName[] = ['tensorflow-gpu', 'tensorflow', 'native', 'wasm', 'cpu'];

export interface ResolveBackendOptions {
  /** Backend to force (`--backend NAME`); 'auto' or undefined tries BACKEND_ORDER. Default: undefined. */
  backend?: BackendName | 'auto';
  /** Replacement loaders by backend name (tests inject fakes). Default: the real loaders. */
  loaders?: Partial<Record<BackendName, BackendLoader>>;
  /** Lines a loader shows while loading (e.g. the PTX-JIT warning). Default: stderr, prefixed "dptrain: ". */
  log?: (line: string) => void;
}

export function isBackendName(s: string): s is BackendName {
  return (BACKEND_ORDER as readonly string[]).includes(s);
}

const reasonOf = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * tfjs's cpu backend prints a "Hi, looks like you are running TensorFlow.js in Node.js..." banner on its
 * first use (any tensor created before or outside the chosen backend). dptrain prints its own backend
 * line (describeBackend), so the banner is switched off.
 */
function silenceCpuBanner(): void {
  try {
    const cpu = tf.findBackend('cpu') as unknown as { firstUse?: boolean } | null;
    if (cpu && 'firstUse' in cpu) cpu.firstUse = false;
  } catch {
    // no cpu backend: nothing to silence
  }
}

/** Loads the named backend, or the first of BACKEND_ORDER that loads, and makes it active in tfjs. */
export async function resolveBackend(options: ResolveBackendOptions = {}): Promise<BackendInfo> {
  const loaders = { ...DEFAULT_LOADERS, ...options.loaders };
  const context = { log: options.log ?? ((line: string) => void process.stderr.write(`dptrain: ${line}\n`)) };
  silenceCpuBanner();
  const forced = options.backend === 'auto' ? undefined : options.backend;
  if (forced !== undefined) {
    if (!isBackendName(forced)) {
      throw new DptrainError('E_CONFIG', `unknown backend '${String(forced)}': use one of ${BACKEND_ORDER.join(', ')} or auto`);
    }
    try {
      const loaded = await loaders[forced](context);
      return { name: forced, tfBackend: loaded.tfBackend, device: loaded.device, tried: [], ...(loaded.gpu ? { gpu: loaded.gpu } : {}) };
    } catch (e) {
      if (isDptrainError(e, 'E_BACKEND_NO_GPU') || isDptrainError(e, 'E_BACKEND_GPU_UNSUPPORTED')) throw e;
      throw new DptrainError('E_BACKEND_UNAVAILABLE', `backend '${forced}' cannot load: ${reasonOf(e)}`, { backend: forced }, { cause: e });
    }
  }
  const tried: BackendInfo['tried'] = [];
  for (const name of BACKEND_ORDER) {
    try {
      const loaded = await loaders[name](context);
      return { name, tfBackend: loaded.tfBackend, device: loaded.device, tried, ...(loaded.gpu ? { gpu: loaded.gpu } : {}) };
    } catch (e) {
      tried.push({ name, error: reasonOf(e) });
    }
  }
  throw new DptrainError('E_NO_BACKEND', `no compute backend could load:\n${tried.map((t) => `  ${t.name}: ${t.error}`).join('\n')}`, { tried });
}

/**
 * The one entry every command and process starts its backend with: `--backend NAME` (or 'auto' / none: the first
 * of BACKEND_ORDER that loads), activated in tfjs. An unknown name is E_CONFIG; `log` gets the loaders' lines.
 */
export async function startBackend(name?: string, log?: (line: string) => void): Promise<BackendInfo> {
  return resolveBackend({ ...(name ? { backend: name as BackendName } : {}), ...(log ? { log } : {}) });
}

/** Short form of a failure reason for one-line logs ("not installed", "no usable GPU", ...). */
export function shortReason(error: string): string {
  if (/ is not installed/.test(error)) return 'not installed';
  if (/no GPU is usable/.test(error)) return `no usable GPU (${error.split(': ').slice(1).join(': ').split(';')[0]?.trim()})`;
  const first = error.split('\n')[0] ?? '';
  return first.length > 90 ? `${first.slice(0, 87)}...` : first;
}

/** One line for logs: "backend: wasm on cpu (wasm, SIMD, 1 thread); tried: tensorflow-gpu: not installed, ...". */
export function describeBackend(info: BackendInfo): string {
  const head = `backend: ${info.name} on ${info.device}`;
  if (info.tried.length === 0) return head;
  return `${head}; tried: ${info.tried.map((t) => `${t.name}: ${shortReason(t.error)}`).join(', ')}`;
}
