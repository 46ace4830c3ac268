import type { GpuSupport } from './gpu-preflight.js';

/** Names accepted by `--backend`, in the order they are tried when none is named. */
export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'native' | 'wasm' | 'cpu';

export interface BackendInfo {
  /** Which backend runs (one of BackendName). */
  name: BackendName;
  /** tfjs's own backend name (tf.getBackend()). */
  tfBackend: string;
  /** Device in words, e.g. "GPU 0: NVIDIA H100 80GB", "cpu (wasm, 1 thread)". */
  device: string;
  /** Backends tried before this one and why each failed. */
  tried: { name: BackendName; error: string }[];
  /** tensorflow-gpu only: the GPU and tfjs-node-gpu 4.22's verdict on it ('native', 'ptx-jit'). Default: none. */
  gpu?: GpuSupport;
}
