export * from './types.js';
export { resolveBackend, describeBackend, shortReason, isBackendName, BACKEND_ORDER, type ResolveBackendOptions } from './resolve.js';
export { DEFAULT_LOADERS, BACKEND_PACKAGES, importPackage, useNativeOptimizer, type BackendLoader, type BackendLoaders, type LoadedBackend } from './loaders.js';
export {
  assessGpu,
  gatherGpuFacts,
  findCudaLibraries,
  EXPECTED_CUDA_MAJOR,
  EXPECTED_CUDNN_MAJOR,
  type GpuFacts,
  type GpuVerdict,
  type GatherGpuFactsOptions,
} from './gpu.js';
export { activateWasm, wasmBinaryDir } from './wasm.js';
export { readTensorInto } from './read-into.js';
export * from './kernels/index.js';
