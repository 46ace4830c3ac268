import * as tf from '@tensorflow/tfjs';
import { registerNativeBackend } from './index.js';
import { NATIVE_BACKEND_NAME } from './backend.js';

/** Registers the native backend for a test file; resolves to the reason when it cannot (tests then skip). */
export async function nativeOrSkipReason(): Promise<string | null> {
  try {
    await registerNativeBackend();
    return null;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    console.warn(`[backend-native] skipping native kernel tests: ${reason}`);
    return reason;
  }
}

/** A convolution test case: input [n, h, w, c], k x k filter with o outputs (a depthwise case: o = c · multiplier). */
export interface ConvCase {
  n: number;
  h: number;
  w: number;
  c: number;
  o: number;
  k: number;
  stride: 1 | 2;
  pad: 'same' | 'valid';
}

/** Small deterministic PRNG (mulberry32) for picking shapes. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
export function int(rand: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rand() * (hi - lo + 1));
}

/** Runs fn on the reference cpu backend and on the native backend with the same inputs; returns both outputs' data. */
export async function onBoth(
  inputs: { shape: number[]; data: Float32Array }[],
  fn: (...xs: tf.Tensor[]) => tf.Tensor | tf.Tensor[],
): Promise<{ cpu: Float32Array[]; native: Float32Array[] }> {
  const run = async (backend: string) => {
    await tf.setBackend(backend);
    const xs = inputs.map((i) => tf.tensor(i.data, i.shape));
    const out = fn(...xs);
    const outs = Array.isArray(out) ? out : [out];
    const data = await Promise.all(outs.map(async (t) => new Float32Array(await t.data())));
    tf.dispose([...xs, ...outs]);
    return data;
  };
  const cpu = await run('cpu');
  const native = await run(NATIVE_BACKEND_NAME);
  return { cpu, native };
}

export function randomData(rand: () => number, shape: number[], quantize = false): { shape: number[]; data: Float32Array } {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const v = rand() * 2 - 1;
    data[i] = quantize ? Math.round(v * 4) / 4 : v;
  }
  return { shape, data };
}

/** Max |a-b| relative to max(1, max |b|). */
export function relErr(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let err = 0;
  let scale = 1;
  for (let i = 0; i < a.length; i++) {
    err = Math.max(err, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return err / scale;
}
