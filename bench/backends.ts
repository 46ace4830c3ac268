// Selects a tfjs backend for a bench process the way dptrain does (core's resolveBackend: wasm gets dptrain's
// extra kernels, native registers the oneDNN backend). Threads for native: DPTRAIN_NATIVE_THREADS / OMP_NUM_THREADS.
import { resolveBackend } from '@dptrain/core';

export type BenchBackend = 'native' | 'wasm' | 'cpu';

export async function useBackend(name: BenchBackend, threads?: number): Promise<{ tfBackend: string; device: string }> {
  if (threads !== undefined) {
    process.env.DPTRAIN_NATIVE_THREADS = String(threads);
    process.env.OMP_NUM_THREADS ??= String(threads);
  }
  const info = await resolveBackend({ backend: name });
  return { tfBackend: info.tfBackend, device: info.device };
}
