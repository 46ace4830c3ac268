import type { PreprocessMode } from '../config.js';

/** ImageNet channel means in BGR order, as Keras' "caffe" preprocessing subtracts them. */
export const CAFFE_MEANS_BGR: readonly [number, number, number] = [103.939, 116.779, 123.68];

/**
 * Applies per-backbone preprocessing in place to `pixels` RGB pixels (HWC, values 0..255) starting at
 * `offset` in `buf`:
 * - `caffe` (VGG16): RGB→BGR, subtract the ImageNet means [103.939, 116.779, 123.68] (BGR), no scaling;
 * - `tf`: x / 127.5 - 1, range [-1, 1];
 * - `unit`: x / 255, range [0, 1].
 */
export function preprocessInPlace(buf: Float32Array, mode: PreprocessMode, offset = 0, pixels?: number): void {
  const n = pixels ?? Math.floor((buf.length - offset) / 3);
  const end = offset + n * 3;
  switch (mode) {
    case 'caffe': {
      const [mb, mg, mr] = CAFFE_MEANS_BGR;
      for (let i = offset; i < end; i += 3) {
        const r = buf[i] as number;
        buf[i] = (buf[i + 2] as number) - mb;
        buf[i + 1] = (buf[i + 1] as number) - mg;
        buf[i + 2] = r - mr;
      }
      return;
    }
    case 'tf':
      for (let i = offset; i < end; i++) buf[i] = (buf[i] as number) / 127.5 - 1;
      return;
    case 'unit':
      for (let i = offset; i < end; i++) buf[i] = (buf[i] as number) / 255;
      return;
    default: {
      const never: never = mode;
      throw new Error(`unknown preprocess mode ${String(never)}`);
    }
  }
}

/** Copies RGB bytes (HWC) into `dst` at `offset` and preprocesses them. */
export function preprocessInto(src: Uint8Array, dst: Float32Array, mode: PreprocessMode, offset = 0): void {
  for (let i = 0; i < src.length; i++) dst[offset + i] = src[i] as number;
  preprocessInPlace(dst, mode, offset, src.length / 3);
}

/** Returns a new Float32Array with the preprocessed values of RGB bytes (HWC). */
export function preprocessPixels(src: Uint8Array, mode: PreprocessMode): Float32Array {
  const out = new Float32Array(src.length);
  preprocessInto(src, out, mode, 0);
  return out;
}

/**
 * Inverse of the preprocessing (for display/debugging): model-space values back to RGB 0..255 (unclamped).
 */
export function unpreprocess(buf: Float32Array, mode: PreprocessMode): Float32Array {
  const out = new Float32Array(buf.length);
  if (mode === 'caffe') {
    const [mb, mg, mr] = CAFFE_MEANS_BGR;
    for (let i = 0; i < buf.length; i += 3) {
      out[i] = (buf[i + 2] as number) + mr;
      out[i + 1] = (buf[i + 1] as number) + mg;
      out[i + 2] = (buf[i] as number) + mb;
    }
  } else if (mode === 'tf') {
    for (let i = 0; i < buf.length; i++) out[i] = ((buf[i] as number) + 1) * 127.5;
  } else {
    for (let i = 0; i < buf.length; i++) out[i] = (buf[i] as number) * 255;
  }
  return out;
}
