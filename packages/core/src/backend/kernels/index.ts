export { registerWasmTrainingKernels, WASM_TRAINING_KERNELS, type WasmTrainingKernel } from './register.js';
export { conv2dBackpropFilterOps, type Conv2DBackpropFilterArgs } from './conv2d-backprop-filter.js';
export { conv2dBackpropInputOps, type Conv2DBackpropInputArgs } from './conv2d-backprop-input.js';
export {
  depthwiseBackpropFilterOps,
  depthwiseBackpropInputOps,
  type DepthwiseBackpropFilterArgs,
  type DepthwiseBackpropInputArgs,
} from './depthwise-backprop.js';
