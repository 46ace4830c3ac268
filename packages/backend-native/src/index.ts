// @dptrain/backend-native — optional oneDNN kernels behind the tfjs backend 'dptrain-native'.
import * as tf from '@tensorflow/tfjs';
import { loadAddon, type ConvAlgorithm, type LoadAddonOptions, type NativePrecision } from './addon.js';
import { NATIVE_BACKEND_NAME, registerNativeKernels } from './backend.js';
import { readNativeEnv } from './env.js';
import { outputPool } from './output-pool.js';

export { ADDON_PATH, loadAddon, type ConvAlgorithm, type LoadAddonOptions, type NativeAddon, type NativePrecision } from './addon.js';
export { OutputPool, outputPool, outputPoolStats, type OutputPoolOptions, type OutputPoolStats, type PooledBackend } from './output-pool.js';
export { NATIVE_BACKEND_NAME, NATIVE_KERNELS, nativeKernelStats, resetNativeKernelStats, registerNativeKernels } from './backend.js';

export interface RegisterNativeBackendOptions extends LoadAddonOptions {
  /** oneDNN (OpenMP) threads in this process. Default: $DPTRAIN_NATIVE_THREADS, else $OMP_NUM_THREADS, else all cores. */
  threads?: number;
  /**
   * How 3x3 stride-1 convolutions run: 'winograd' (fewer multiplications; where oneDNN has it for the shape, direct
   * elsewhere) or 'direct'. Default: $DPTRAIN_NATIVE_CONV, else 'winograd'.
   */
  convAlgorithm?: ConvAlgorithm;
  /** Precision of the convolutions and matmuls ('bf16' needs AVX512-BF16 or AMX). Default: 'fp32'. */
  precision?: NativePrecision;
  /**
   * Reordered filter copies kept per convolution shape, reused while their filter tensor lives (0: none, every call
   * reorders the filter). Default: $DPTRAIN_NATIVE_FILTER_COPIES, else 6.
   */
  filterCopies?: number;
}

/**
 * Loads the oneDNN addon (building it on first use when libdnnl-dev is installed) and registers the tfjs backend
 * 'dptrain-native'. It does not switch to it: call `tf.setBackend(tfBackend)`.
 * Throws an Error naming what is missing when the addon cannot be built or loaded.
 */
export async function registerNativeBackend(options: RegisterNativeBackendOptions = {}): Promise<{ tfBackend: string; device: string }> {
  const addon = loadAddon(options);
  const env = readNativeEnv();
  const threads = options.threads ?? env.threads;
  if (threads !== undefined) addon.setNumThreads(threads);
  // Activation layout of the oneDNN calls: 'nhwc' (default, no reorders) or 'any' (blocked layouts, reordered per call).
  if (env.layout) addon.setActivationLayout(env.layout);
  const conv = options.convAlgorithm ?? env.convAlgorithm ?? 'winograd';
  if (conv !== 'winograd' && conv !== 'direct') {
    throw new Error(`native backend: convolution algorithm '${conv}' (DPTRAIN_NATIVE_CONV) is not 'winograd' or 'direct'`);
  }
  addon.setConvAlgorithm(conv);
  addon.setPrecision(options.precision ?? 'fp32');
  addon.setFilterCopies(options.filterCopies ?? env.filterCopies ?? 6);
  if (env.poolMaxBytes !== undefined) outputPool.setMaxBytes(env.poolMaxBytes);
  registerNativeKernels(addon);
  // Instantiate now so a broken registration fails here, not in the first kernel.
  if (!tf.findBackend(NATIVE_BACKEND_NAME)) throw new Error(`native backend: tfjs could not create '${NATIVE_BACKEND_NAME}'`);
  const info = addon.info();
  const n = addon.getNumThreads();
  return { tfBackend: NATIVE_BACKEND_NAME, device: `cpu (oneDNN ${info.dnnl}, ${n} thread${n === 1 ? '' : 's'})` };
}

/** Sets oneDNN's thread count in this process (loads the addon); returns the count in effect. */
export function setNativeThreads(threads: number): number {
  return loadAddon().setNumThreads(threads);
}

/** Sets the precision of the native convolutions and matmuls in this process (loads the addon); returns it. */
export function setNativePrecision(precision: NativePrecision): NativePrecision {
  return loadAddon().setPrecision(precision);
}

/** The bf16 instructions oneDNN may use on this CPU ('amx', 'avx512_bf16'), or null when it has none. */
export function nativeBf16Isa(): 'amx' | 'avx512_bf16' | null {
  return loadAddon().info().bf16Isa || null;
}
