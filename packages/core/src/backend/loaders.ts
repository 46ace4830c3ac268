/**
 * The real loaders, one per backend: each imports what it needs, makes its tfjs backend the active one
 * and says which device runs. A loader throws (with a plain reason) when its backend cannot run here.
 */
import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { DptrainError } from '../errors.js';
import { nativeOptimizerAllowed } from '../env.js';
import { assessGpu, gatherGpuFacts } from './gpu.js';
import { preflightTfjsNodeGpu, type GpuSupport } from './gpu-preflight.js';
import { setAdamKernel, type AdamKernel } from '../training/optimizers.js';
import type { BackendName } from './types.js';
import { activateWasm } from './wasm.js';

/** What a loader reports once its backend is active. */
export interface LoadedBackend {
  /** tfjs backend name now active (tf.getBackend()). */
  tfBackend: string;
  /** Device in words. */
  device: string;
  /** The GPU and tfjs-node-gpu's verdict on it (tensorflow-gpu only). Default: none. */
  gpu?: GpuSupport;
}

/** What a loader may use while it loads. */
export interface LoaderContext {
  /** Shows a line to the user at once (e.g. a PTX-JIT warning before a long first start). */
  log: (line: string) => void;
}

/** Loads one backend and makes it active; throws with the reason when it cannot. */
export type BackendLoader = (context?: LoaderContext) => Promise<LoadedBackend>;

export type BackendLoaders = Record<BackendName, BackendLoader>;

/** npm package behind each backend (for messages). */
export const BACKEND_PACKAGES: Record<BackendName, string> = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
  native: '@dptrain/backend-native',
  wasm: '@tensorflow/tfjs-backend-wasm',
  cpu: '@tensorflow/tfjs-backend-cpu',
};

const firstLine = (e: unknown) =>
  String(e instanceof Error ? e.message : e)
    .split('\n')[0]
    ?.trim() ?? '';

/**
 * `import(pkg)` with a message that says plainly whether the package is absent or present but broken
 * (e.g. tfjs-node installed without its native binding, which npm 11 does not build).
 */
export async function importPackage(pkg: string): Promise<Record<string, unknown>> {
  try {
    return (await import(/* @vite-ignore */ pkg)) as Record<string, unknown>;
  } catch (e) {
    const code = (e as { code?: string }).code;
    const msg = firstLine(e);
    if ((code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && msg.includes(pkg)) {
      throw new Error(`${pkg} is not installed: ${msg}`, { cause: e });
    }
    throw new Error(`${pkg} is installed but failed to load: ${msg}`, { cause: e });
  }
}

async function activate(tfBackend: string, pkg: string): Promise<void> {
  let ok = false;
  try {
    ok = await tf.setBackend(tfBackend);
  } catch (e) {
    throw new Error(`${pkg} loaded but tfjs backend '${tfBackend}' failed to start: ${firstLine(e)}`, { cause: e });
  }
  if (!ok || tf.getBackend() !== tfBackend) {
    throw new Error(`${pkg} loaded but tfjs backend '${tfBackend}' is not available (is it built against another copy of @tensorflow/tfjs-core?)`);
  }
  await tf.ready();
  // Backends built on tfjs's cpu backend print a "use tfjs-node" banner on first use; dptrain prints
  // its own backend line instead.
  const b = tf.backend() as unknown as { firstUse?: boolean };
  if (typeof b.firstUse === 'boolean') b.firstUse = false;
  smokeTest(tfBackend, pkg);
}

/** Runs one tiny op on the new backend so a broken install fails here, not in the first training step. */
function smokeTest(tfBackend: string, pkg: string): void {
  let got: number | undefined;
  try {
    got = tf.tidy(() => tf.matMul(tf.ones([2, 3]), tf.ones([3, 2])).dataSync()[0]);
  } catch (e) {
    throw new Error(`${pkg} loaded but a test op on tfjs backend '${tfBackend}' failed: ${firstLine(e)}`, { cause: e });
  }
  if (got !== 3) throw new Error(`${pkg} loaded but a test op on tfjs backend '${tfBackend}' gave ${got} instead of 3`);
}

async function loadTensorflowGpu(context?: LoaderContext): Promise<LoadedBackend> {
  const pkg = BACKEND_PACKAGES['tensorflow-gpu'];
  // before TensorFlow loads: refuse a GPU it cannot run on, warn about a PTX JIT, set memory growth when shared
  const preflight = await preflightTfjsNodeGpu();
  for (const note of preflight.notes) context?.log(note);
  await importPackage(pkg);
  await activate('tensorflow', pkg);
  const verdict = assessGpu(await gatherGpuFacts({ tfBackend: tf.backend() }));
  if (!verdict.usable) throw new DptrainError('E_BACKEND_NO_GPU', verdict.reason ?? 'no usable GPU');
  return { tfBackend: 'tensorflow', device: verdict.device, ...(preflight.support ? { gpu: preflight.support } : {}) };
}

async function loadTensorflow(): Promise<LoadedBackend> {
  const pkg = BACKEND_PACKAGES.tensorflow;
  await importPackage(pkg);
  await activate('tensorflow', pkg);
  return { tfBackend: 'tensorflow', device: `cpu (TensorFlow C library, ${os.cpus().length} cores)` };
}

interface NativeModule {
  registerNativeBackend: () => Promise<{ tfBackend: string; device: string }>;
  loadAddon: (options?: { build?: boolean }) => { adamUpdate?: AdamKernel };
}

/**
 * Runs the optimizer's Adam steps through the native addon's compiled loop when the addon loads in this process
 * (same results bit for bit, several times faster than the JS loop on ~9 M weights); any backend may be active.
 * Called where the optimizer runs (runTraining: the coordinator or the single process), not by workers.
 * Returns false, changing nothing, when the addon is absent or DPTRAIN_NATIVE_OPTIMIZER=0.
 */
export async function useNativeOptimizer(): Promise<boolean> {
  if (!nativeOptimizerAllowed()) return false;
  try {
    const mod = (await import(/* @vite-ignore */ BACKEND_PACKAGES.native)) as Partial<NativeModule>;
    const addon = mod.loadAddon?.({ build: false });
    if (!addon || typeof addon.adamUpdate !== 'function') return false;
    setAdamKernel(addon.adamUpdate.bind(addon));
    return true;
  } catch {
    return false;
  }
}

async function loadNative(): Promise<LoadedBackend> {
  const pkg = BACKEND_PACKAGES.native;
  const mod = (await importPackage(pkg)) as Partial<NativeModule>;
  if (typeof mod.registerNativeBackend !== 'function') throw new Error(`${pkg} has no registerNativeBackend()`);
  let info: { tfBackend: string; device: string };
  try {
    info = await mod.registerNativeBackend();
  } catch (e) {
    throw new Error(`${pkg} is unavailable: ${firstLine(e)}`, { cause: e });
  }
  await activate(info.tfBackend, pkg);
  return info;
}

async function loadWasm(): Promise<LoadedBackend> {
  let device: string;
  try {
    device = await activateWasm();
  } catch (e) {
    throw new Error(`${BACKEND_PACKAGES.wasm} failed to start: ${firstLine(e)}`, { cause: e });
  }
  smokeTest('wasm', BACKEND_PACKAGES.wasm);
  return { tfBackend: 'wasm', device };
}

async function loadCpu(): Promise<LoadedBackend> {
  await activate('cpu', BACKEND_PACKAGES.cpu);
  return { tfBackend: 'cpu', device: 'cpu (tfjs JavaScript kernels, 1 thread)' };
}

/** The real loaders. */
export const DEFAULT_LOADERS: Readonly<BackendLoaders> = {
  'tensorflow-gpu': loadTensorflowGpu,
  tensorflow: loadTensorflow,
  native: loadNative,
  wasm: loadWasm,
  cpu: loadCpu,
};
