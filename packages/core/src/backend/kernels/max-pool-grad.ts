/**
 * MaxPoolGrad for the wasm backend. tfjs-backend-wasm 4.22's own kernel drops the gradient of every window whose
 * maximum is 0 or negative. After a ReLU that is harmless (the ReLU's gradient is 0 there too: VGG16), but after a
 * BatchNorm (Xception's max-pooled blocks) phase-2 gradients come out wrong. This one sends dy to each window's
 * first maximum, as the cpu kernel does.
 */
import * as tf from '@tensorflow/tfjs';

/** What the kernel needs of the wasm backend: its data, and making an output from values. */
interface WasmBackendLike {
  readSync(dataId: tf.DataId): tf.backend_util.BackendValues;
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: tf.backend_util.BackendValues): tf.TensorInfo;
}

/** dx[argmax of window (b, y, x, c)] += dy[b, y, x, c]; the first maximum in row-major window order wins ties. */
export function maxPoolGradValues(x: Float32Array, dy: Float32Array, info: tf.backend_util.Conv2DInfo): Float32Array {
  const { batchSize, inHeight, inWidth, inChannels: c, outHeight, outWidth, strideHeight, strideWidth } = info;
  const fh = info.effectiveFilterHeight;
  const fw = info.effectiveFilterWidth;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const dx = new Float32Array(x.length);
  for (let b = 0; b < batchSize; b++) {
    const xb = b * inHeight * inWidth * c;
    for (let oy = 0; oy < outHeight; oy++) {
      const y0 = oy * strideHeight - top;
      const yMin = Math.max(0, y0);
      const yMax = Math.min(inHeight, y0 + fh);
      for (let ox = 0; ox < outWidth; ox++) {
        const x0 = ox * strideWidth - left;
        const xMin = Math.max(0, x0);
        const xMax = Math.min(inWidth, x0 + fw);
        const o = ((b * outHeight + oy) * outWidth + ox) * c;
        for (let d = 0; d < c; d++) {
          let best = Number.NEGATIVE_INFINITY;
          let at = -1;
          for (let yy = yMin; yy < yMax; yy++) {
            for (let xx = xMin; xx < xMax; xx++) {
              const i = xb + (yy * inWidth + xx) * c + d;
              if (x[i]! > best) {
                best = x[i]!;
                at = i;
              }
            }
          }
          if (at >= 0) dx[at]! += dy[o + d]!;
        }
      }
    }
  }
  return dx;
}

export const maxPoolGradKernel: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const { dy, input } = inputs as unknown as { dy: tf.TensorInfo; input: tf.TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as tf.MaxPoolGradAttrs;
  const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
  const wasm = backend as unknown as WasmBackendLike;
  const x = wasm.readSync(input.dataId) as Float32Array; // copies out of the wasm heap
  const g = wasm.readSync(dy.dataId) as Float32Array;
  return wasm.makeOutput([...input.shape], 'float32', undefined, maxPoolGradValues(x, g, info));
};
