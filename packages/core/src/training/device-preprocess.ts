/**
 * Pixels uploaded as bytes and preprocessed on the device. tfjs has no uint8 tensors, so the three bytes of an RGB
 * pixel travel as one int32 (r + 256 g + 65536 b: 4 bytes per pixel on the wire instead of the 12 of float32; three
 * bytes, not four, so the value stays non-negative, where wasm's integer division truncates instead of flooring) and
 * are unpacked on the device with integer division, then converted and preprocessed there (same formulas as
 * data/preprocess.ts, rounded at each op).
 */
import * as tf from '@tensorflow/tfjs';
import type { PreprocessMode } from '../config.js';
import { CAFFE_MEANS_BGR } from '../data/preprocess.js';

/** Host side: three bytes per int32, little-endian (the last int32 zero-padded). */
export function packBytes(bytes: Uint8Array): Int32Array {
  const out = new Int32Array(Math.ceil(bytes.length / 3));
  for (let i = 0, j = 0; i < bytes.length; i += 3, j++) out[j] = bytes[i]! | ((bytes[i + 1] ?? 0) << 8) | ((bytes[i + 2] ?? 0) << 16);
  return out;
}

/** Device side: `packed` (from packBytes) back to `count` values 0..255, as float32. */
export function unpackBytes(packed: tf.Tensor1D, count: number): tf.Tensor1D {
  return tf.tidy(() => {
    const parts: tf.Tensor[] = [];
    const base = tf.scalar(256, 'int32'); // int32 throughout (exact); the values are < 2^24 and non-negative
    let rest: tf.Tensor = packed;
    for (let b = 0; b < 3; b++) {
      const high = tf.floorDiv(rest, base);
      parts.push(tf.sub(rest, tf.mul(high, base)));
      rest = high;
    }
    const bytes = tf.stack(parts, 1).reshape([-1]);
    return bytes.slice(0, count).toFloat() as tf.Tensor1D;
  });
}

/** Preprocessing of RGB pixels 0..255 (NHWC float32) on the device; see data/preprocess.ts for the formulas. */
export function preprocessOnDevice(x: tf.Tensor4D, mode: PreprocessMode): tf.Tensor4D {
  return tf.tidy(() => {
    switch (mode) {
      case 'caffe': {
        const [mb, mg, mr] = CAFFE_MEANS_BGR;
        const bgr = tf.reverse(x, 3);
        return tf.sub(bgr, tf.tensor1d([mb, mg, mr])) as tf.Tensor4D;
      }
      case 'tf':
        return tf.sub(tf.div(x, 127.5), 1) as tf.Tensor4D;
      case 'unit':
        return tf.div(x, 255) as tf.Tensor4D;
      default: {
        const never: never = mode;
        throw new Error(`unknown preprocess mode ${String(never)}`);
      }
    }
  });
}
