import * as tf from '@tensorflow/tfjs';
import * as core from '@dptrain/core';
import type { BackendInfo, BackendName } from '@dptrain/core';

type Resolver = (options: { backend?: BackendName | 'auto'; log?: (line: string) => void }) => Promise<BackendInfo>;

const say = (line: string): void => void process.stderr.write(`dptrain worker: ${line}\n`);

/**
 * The backend of this worker: core's `resolveBackend` (tfjs-node-gpu → tfjs-node → wasm → cpu, or the one
 * named). Falls back to tfjs cpu if core has no resolver.
 */
export async function selectBackend(name?: string): Promise<BackendInfo> {
  const resolve = (core as unknown as { resolveBackend?: Resolver }).resolveBackend;
  // the loaders' lines (a PTX-JIT warning, GPU memory growth) are shown before the long part of the start
  if (resolve) return resolve({ ...(name ? { backend: name as BackendName } : {}), log: say });
  await tf.setBackend('cpu');
  await tf.ready();
  return { name: 'cpu', tfBackend: tf.getBackend(), device: 'cpu (tfjs)', tried: [] };
}
