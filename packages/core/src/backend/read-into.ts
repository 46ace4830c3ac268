import * as tf from '@tensorflow/tfjs';

/** A backend that can copy a tensor's values out without handing its storage to the caller (the native backend). */
interface ReadIntoBackend {
  readInto?(dataId: object, dst: Float32Array, offset: number): boolean;
}

/**
 * Copies a float32 tensor's values into `dst` at `offset`. Same result as `dst.set(t.dataSync(), offset)`, but on
 * the native backend the tensor's array stays private, so it can be recycled once the tensor is disposed
 * (dataSync() hands the array out, which keeps it from ever being reused).
 */
export function readTensorInto(t: tf.Tensor, dst: Float32Array, offset = 0): void {
  if (t.dtype === 'float32' && t.size + offset <= dst.length) {
    const b = tf.engine().backend as unknown as ReadIntoBackend;
    if (b.readInto?.(t.dataId, dst, offset)) return;
  }
  dst.set(t.dataSync() as Float32Array, offset);
}
