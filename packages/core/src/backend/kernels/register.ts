/**
 * Registers on the wasm backend the gradient kernels a training step needs and wasm lacks (or has
 * only as a slow loop). Found by running forward + backward (`tf.variableGrads`, `model.fit` with
 * Adam/SGD/RMSprop) of tiny VGG-shaped (conv same/valid, relu, maxpool, GAP/flatten, dense,
 * dropout, softmax cross-entropy) and MobileNetV2-shaped (zero padding, stride-2 conv, batchnorm,
 * relu6, depthwise conv stride 1/2, 1x1 conv, add) models on wasm and collecting every
 * "Kernel 'X' not registered for backend 'wasm'":
 *
 * - Conv2DBackpropFilter                 (missing)  → one wasm Conv2D on transposed tensors
 * - DepthwiseConv2dNativeBackpropInput   (missing)  → one wasm DepthwiseConv2dNative
 * - DepthwiseConv2dNativeBackpropFilter  (missing)  → one wasm DepthwiseConv2dNative
 * - Conv2DBackpropInput                  (slow loop) → one wasm Conv2D with the flipped filter
 * - MaxPoolGrad                          (wrong: drops windows whose maximum is <= 0) → a JS scatter loop
 *
 * Everything else those steps use (Relu/Relu6 gradients via Step/Select, pad/slice,
 * mean, matmul, softmax, batch norm, optimizers) is already on wasm.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm'; // its kernels must be registered before we replace any
import { conv2dBackpropFilterKernel } from './conv2d-backprop-filter.js';
import { conv2dBackpropInputKernel } from './conv2d-backprop-input.js';
import { depthwiseBackpropFilterKernel, depthwiseBackpropInputKernel } from './depthwise-backprop.js';
import { maxPoolGradKernel } from './max-pool-grad.js';

/** A kernel this module registers on wasm and why. */
export interface WasmTrainingKernel {
  /** tfjs kernel name. */
  kernelName: string;
  /** 'missing' (wasm has none) or 'replaced' (wasm's own is a slow loop, or wrong). */
  reason: 'missing' | 'replaced';
  /** The implementation. */
  kernelFunc: tf.KernelFunc;
}

/** The kernels `registerWasmTrainingKernels` installs, in registration order. */
export const WASM_TRAINING_KERNELS: readonly WasmTrainingKernel[] = [
  { kernelName: 'Conv2DBackpropFilter', reason: 'missing', kernelFunc: conv2dBackpropFilterKernel },
  { kernelName: 'Conv2DBackpropInput', reason: 'replaced', kernelFunc: conv2dBackpropInputKernel },
  { kernelName: 'DepthwiseConv2dNativeBackpropInput', reason: 'missing', kernelFunc: depthwiseBackpropInputKernel },
  { kernelName: 'DepthwiseConv2dNativeBackpropFilter', reason: 'missing', kernelFunc: depthwiseBackpropFilterKernel },
  { kernelName: 'MaxPoolGrad', reason: 'replaced', kernelFunc: maxPoolGradKernel },
];

const BACKEND = 'wasm';

/**
 * Installs `WASM_TRAINING_KERNELS` for the 'wasm' backend. Idempotent: a kernel already installed by
 * this function is left alone; a wasm kernel of the same name (Conv2DBackpropInput) is replaced.
 * Works before or after the wasm backend is initialised (the kernel registry is global).
 */
export function registerWasmTrainingKernels(): void {
  for (const k of WASM_TRAINING_KERNELS) {
    const existing = tf.getKernel(k.kernelName, BACKEND);
    if (existing?.kernelFunc === k.kernelFunc) continue;
    if (existing) tf.unregisterKernel(k.kernelName, BACKEND);
    tf.registerKernel({ kernelName: k.kernelName, backendName: BACKEND, kernelFunc: k.kernelFunc });
  }
}
