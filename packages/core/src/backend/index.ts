export { type BackendInfo, type BackendName } from './types.js';
export { resolveBackend, startBackend, describeBackend, shortReason, isBackendName, BACKEND_ORDER, type ResolveBackendOptions } from './resolve.js';
export {
  DEFAULT_LOADERS,
  BACKEND_PACKAGES,
  importPackage,
  useNativeOptimizer,
  type BackendLoader,
  type BackendLoaders,
  type LoadedBackend,
  type LoaderContext,
} from './loaders.js';
export {
  assessGpu,
  gatherGpuFacts,
  findCudaLibraries,
  pickVersion,
  EXPECTED_CUDA_MAJOR,
  EXPECTED_CUDNN_MAJOR,
  type GpuFacts,
  type GpuVerdict,
  type GatherGpuFactsOptions,
  type CudaVersions,
} from './gpu.js';
export {
  tfjsNodeGpuVerdict,
  explainVerdict,
  computeCapabilityByName,
  parseComputeCapability,
  COMPUTE_CAPABILITY_BY_NAME,
  TFJS_NODE_GPU_SASS,
  TFJS_NODE_GPU_PTX,
  type TfjsNodeGpuVerdict,
} from './gpu-support.js';
export { queryGpus, parseNvidiaSmi, NVIDIA_SMI_FIELDS, type GpuDescription, type QueryGpusOptions } from './nvidia-smi.js';
export { preflightTfjsNodeGpu, visibleGpus, type GpuSupport, type GpuPreflightResult, type GpuPreflightOptions } from './gpu-preflight.js';
export {
  applyMemoryGrowth,
  countOtherGpuProcesses,
  ALLOW_GROWTH_VAR,
  type MemoryGrowthDecision,
  type MemoryGrowthFacts,
} from './memory-growth.js';
export { activateWasm, wasmBinaryDir } from './wasm.js';
export {
  applyPrecision,
  bf16Unsupported,
  detectBf16Isa,
  resolvePrecision,
  workerPrecision,
  withRunPrecision,
  type Bf16Isa,
  type Precision,
  type PrecisionSetting,
  type ResolvePrecisionOptions,
} from './precision.js';
export { readTensorInto } from './read-into.js';
export { type Conv2DBackpropFilterArgs, conv2dBackpropFilterOps, type Conv2DBackpropInputArgs, conv2dBackpropInputOps } from './kernels/index.js';
export { type DepthwiseBackpropFilterArgs, depthwiseBackpropFilterOps, type DepthwiseBackpropInputArgs, depthwiseBackpropInputOps } from './kernels/index.js';
export { registerWasmTrainingKernels, WASM_TRAINING_KERNELS, type WasmTrainingKernel } from './kernels/index.js';
