/**
 * Small tensor helpers shared by the wasm training kernels. Everything here is built from tfjs ops,
 * so it runs on the active backend's own (fast) kernels; callers wrap their work in `tf.tidy`.
 */
import * as tf from '@tensorflow/tfjs';

/** A kernel input as the engine hands it over: a Tensor or a bare TensorInfo. */
export type KernelInput = tf.TensorInfo;

/**
 * A kernel input as a Tensor the ops can take. The engine hands registered kernels the op's own
 * Tensors, used as they are (not tracked by the caller's tidy, so never disposed here). A bare
 * TensorInfo is wrapped with an extra reference to its data, which the enclosing `tf.tidy` drops.
 */
export function asTensor<R extends tf.Rank = tf.Rank>(info: KernelInput): tf.Tensor<R> {
  if (info instanceof tf.Tensor) return info as tf.Tensor<R>;
  const engine = tf.engine();
  const t = engine.makeTensorFromTensorInfo(info) as tf.Tensor<R>;
  engine.backend.incRef(info.dataId);
  return t;
}

/**
 * Pads (positive amounts) or crops (negative amounts) the two spatial axes (1 and 2) of an NHWC tensor,
 * with zeros. `[top, bottom, left, right]`.
 */
export function padOrCrop4d(t: tf.Tensor4D, top: number, bottom: number, left: number, right: number): tf.Tensor4D {
  let out = t;
  if (top > 0 || bottom > 0 || left > 0 || right > 0) {
    out = tf.pad(out, [
      [0, 0],
      [Math.max(0, top), Math.max(0, bottom)],
      [Math.max(0, left), Math.max(0, right)],
      [0, 0],
    ]);
  }
  if (top < 0 || bottom < 0 || left < 0 || right < 0) {
    const [n, h, w, c] = out.shape;
    const t0 = Math.max(0, -top);
    const l0 = Math.max(0, -left);
    const hh = h - t0 - Math.max(0, -bottom);
    const ww = w - l0 - Math.max(0, -right);
    out = tf.slice(out, [0, t0, l0, 0], [n, hh, ww, c]);
  }
  return out;
}

/**
 * Inserts `sh - 1` zero rows after every row and `sw - 1` zero columns after every column of an NHWC
 * tensor (the "dilation" of a gradient by the forward stride): [N, H, W, C] → [N, H*sh, W*sw, C].
 * Done with reshape + pad, which stay on the backend's fast kernels.
 */
export function zeroDilate4d(t: tf.Tensor4D, sh: number, sw: number): tf.Tensor4D {
  if (sh === 1 && sw === 1) return t;
  const [n, h, w, c] = t.shape;
  let out: tf.Tensor = t;
  if (sh > 1) {
    out = tf.pad(tf.reshape(out, [n, h, 1, w * c]), [
      [0, 0],
      [0, 0],
      [0, sh - 1],
      [0, 0],
    ]);
  }
  if (sw > 1) {
    out = tf.pad(tf.reshape(out, [n * h * sh, w, 1, c]), [
      [0, 0],
      [0, 0],
      [0, sw - 1],
      [0, 0],
    ]);
  }
  return tf.reshape(out, [n, h * sh, w * sw, c]);
}

/** NCHW → NHWC when `dataFormat` is 'NCHW' (tfjs uses NHWC everywhere else). */
export function toNhwc(t: tf.Tensor4D, dataFormat: string | undefined): tf.Tensor4D {
  return dataFormat === 'NCHW' ? tf.transpose(t, [0, 2, 3, 1]) : t;
}

/** NHWC → NCHW when `dataFormat` is 'NCHW'. */
export function fromNhwc(t: tf.Tensor4D, dataFormat: string | undefined): tf.Tensor4D {
  return dataFormat === 'NCHW' ? tf.transpose(t, [0, 3, 1, 2]) : t;
}

/** NCHW shape → NHWC shape when `dataFormat` is 'NCHW'. */
export function shapeToNhwc(shape: readonly number[], dataFormat: string | undefined): [number, number, number, number] {
  const [a = 0, b = 0, c = 0, d = 0] = shape;
  return dataFormat === 'NCHW' ? [a, c, d, b] : [a, b, c, d];
}

/** Pair form of a stride/dilation attribute (`2` or `[2, 2]`). */
export function pair(v: number | [number, number] | number[] | undefined, dflt = 1): [number, number] {
  if (v === undefined) return [dflt, dflt];
  if (typeof v === 'number') return [v, v];
  return [v[0] ?? dflt, v[1] ?? v[0] ?? dflt];
}

/** The two BackendWasm methods `flipSpatial` uses to copy blocks on the wasm heap. */
interface WasmHeapAccess {
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
}

function heapAccess(): WasmHeapAccess | null {
  const b = tf.backend() as unknown as Partial<WasmHeapAccess>;
  return typeof b.makeOutput === 'function' && typeof b.typedArrayFromHeap === 'function' ? (b as WasmHeapAccess) : null;
}

/**
 * Reverses the two leading (spatial) axes of a filter [fh, fw, A, B] — `tf.reverse(t, [0, 1])`.
 * wasm's Reverse kernel is a per-element loop (~0.3 s for a 3x3x512x512 filter); flipping both spatial
 * axes is reversing the order of the fh·fw contiguous A·B blocks, so on wasm this copies those blocks
 * on the heap (memcpy speed, ~1000x faster). Other backends use tf.reverse.
 */
export function flipSpatial(t: tf.Tensor4D): tf.Tensor4D {
  const heap = t.dtype === 'float32' ? heapAccess() : null;
  if (!heap) return tf.reverse(t, [0, 1]);
  const [fh, fw, a, b] = t.shape;
  const taps = fh * fw;
  const block = a * b;
  const out = heap.makeOutput([fh, fw, a, b], 'float32');
  // Views only after the allocation: growing the wasm memory detaches earlier views.
  const src = heap.typedArrayFromHeap(t);
  const dst = heap.typedArrayFromHeap(out);
  for (let i = 0; i < taps; i++) dst.set(src.subarray((taps - 1 - i) * block, (taps - i) * block), i * block);
  return tf.engine().makeTensorFromTensorInfo(out) as tf.Tensor4D;
}
