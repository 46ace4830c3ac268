// Selects a tfjs backend for a bench process: 'native' (oneDNN addon), 'wasm' or 'cpu'.
import * as tf from '@tensorflow/tfjs';

export type BenchBackend = 'native' | 'wasm' | 'cpu';

export async function useBackend(name: BenchBackend, threads?: number): Promise<{ tfBackend: string; device: string }> {
  if (name === 'native') {
    const { registerNativeBackend } = await import('@dptrain/backend-native');
    const r = await registerNativeBackend(threads !== undefined ? { threads } : {});
    await tf.setBackend(r.tfBackend);
    return r;
  }
  if (name === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    if (threads !== undefined) wasm.setThreadsCount(threads);
    await tf.setBackend('wasm');
    return { tfBackend: 'wasm', device: `cpu (wasm${threads ? `, ${threads} threads` : ''})` };
  }
  await tf.setBackend('cpu');
  return { tfBackend: 'cpu', device: 'cpu (tfjs js kernels)' };
}
