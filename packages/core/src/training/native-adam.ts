import { BACKEND_PACKAGES } from '../backend/loaders.js';
import { nativeOptimizerAllowed } from '../env.js';
import { setVectorKernels, type MergeKernel, type NonFiniteKernel, type SumsOfSquaresKernel } from './vector-kernels.js';

// The TypeScript side of the native Adam update (packages/backend-native/native/adam.cc), next to the optimizers.

/**
 * A compiled Adam update over flat arrays, in place (the native backend's `adamUpdate`): must compute, in double,
 * m = b1 m + (1-b1) g; v = b2 v + (1-b2) g g; w -= (lrT m) / (sqrt(v) + eps), in that order, so that its results
 * are bit-identical to the JS loop of AdamOptimizer.step. When any new m, v or weight would not be finite in
 * float32, it writes nothing and returns the first such index (else -1).
 */
export type AdamKernel = (
  weights: Float32Array,
  gradients: Float32Array,
  m: Float32Array,
  v: Float32Array,
  lrT: number,
  beta1: number,
  beta2: number,
  epsilon: number,
) => number;

/** The native addon's loops that useNativeOptimizer takes (what it needs of packages/backend-native's NativeAddon). */
interface NativeKernels {
  adamUpdate?: AdamKernel;
  mergeTwo?: MergeKernel;
  firstNonFinite?: NonFiniteKernel;
  bucketSumsOfSquares?: SumsOfSquaresKernel;
}

let kernel: AdamKernel | undefined;

/** Runs every AdamOptimizer step through `kernel` (undefined: back to the JS loop). */
export function setAdamKernel(next: AdamKernel | undefined): void {
  kernel = next;
}

/** True when Adam steps run through a kernel set with setAdamKernel. */
export function hasAdamKernel(): boolean {
  return kernel !== undefined;
}

/** The kernel AdamOptimizer.step runs through, if any (see setAdamKernel). */
export function adamKernel(): AdamKernel | undefined {
  return kernel;
}

/**
 * Runs the optimizer's Adam steps, and the exchange's gradient merge and finiteness check (vector-kernels.ts), through
 * the native addon's compiled loops when the addon loads in this process (same results bit for bit, several times faster than the JS loop on ~9 M weights); any backend may be active.
 * Called where the optimizer runs (runTraining: the coordinator or the single process), not by workers.
 * Returns false, changing nothing, when the addon is absent or DPTRAIN_NATIVE_OPTIMIZER=0.
 */
export async function useNativeOptimizer(): Promise<boolean> {
  if (!nativeOptimizerAllowed()) return false;
  try {
    const mod = (await import(/* @vite-ignore */ BACKEND_PACKAGES.native)) as { loadAddon?: (options?: { build?: boolean }) => NativeKernels };
    const addon = mod.loadAddon?.({ build: false });
    if (!addon || typeof addon.adamUpdate !== 'function') return false;
    setAdamKernel(addon.adamUpdate.bind(addon));
    // the exchange's merge, finiteness check and norms too (same bits as JS), where the addon has them
    setVectorKernels({
      mergeTwo: addon.mergeTwo?.bind(addon),
      firstNonFinite: addon.firstNonFinite?.bind(addon),
      bucketSumsOfSquares: addon.bucketSumsOfSquares?.bind(addon),
    });
    return true;
  } catch {
    return false;
  }
}
