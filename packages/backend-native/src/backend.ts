import * as tf from '@tensorflow/tfjs';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import type { NativeAddon } from './addon.js';
import { conv2dBackpropFilterBody, conv2dBackpropInputBody, conv2dBody } from './kernels/conv.js';
import { binaryBody, clipBody, reduceBody, unaryBody } from './kernels/elementwise.js';
import { batchNormBody, padBody, sliceBody, tileBody } from './kernels/norm-pad.js';
import { compareBody, logicalAndBody, selectBody } from './kernels/select.js';
import { batchMatMulBody, fusedMatMulBody } from './kernels/matmul.js';
import { maxPoolBody, maxPoolGradBody } from './kernels/pool.js';
import type { CpuBackendLike, NativeKernelBody } from './kernels/util.js';
import { outputPool, type PooledBackend } from './output-pool.js';
import { kernelProfilingOn } from './env.js';
import { registerNativeGradients } from './gradients.js';

/** tfjs name of the backend: a MathBackendCPU whose heavy kernels run on oneDNN. */
export const NATIVE_BACKEND_NAME = 'dptrain-native';

/**
 * Kernels that run natively (the rest are tfjs cpu's own kernels, registered under this backend too).
 * GreaterEqual, LessEqual, LogicalAnd and Select are same-shape typed-array loops in JS (kernels/select.ts).
 */
export const NATIVE_KERNELS = [
  'Conv2D',
  'FusedConv2D',
  'Conv2DBackpropInput',
  'Conv2DBackpropFilter',
  'DepthwiseConv2dNative',
  'FusedDepthwiseConv2D',
  'DepthwiseConv2dNativeBackpropInput',
  'DepthwiseConv2dNativeBackpropFilter',
  'BatchMatMul',
  '_FusedMatMul',
  'MaxPool',
  'MaxPoolGrad',
  'Add',
  'Sub',
  'Multiply',
  'RealDiv',
  'Relu',
  'Step',
  'Relu6',
  'ClipByValue',
  'PadV2',
  'Slice',
  'Tile',
  'GreaterEqual',
  'LessEqual',
  'LogicalAnd',
  'Select',
  'FusedBatchNorm',
  'Sum',
  'Mean',
] as const;

/** Per kernel: calls served natively, and calls that fell back to the cpu kernel (unsupported attrs/dtypes). */
const stats = new Map<string, { native: number; fallback: number; cpuMs?: number }>();
/** With DPTRAIN_NATIVE_PROFILE=1, each native kernel also sums the process CPU time it used (robust to other load). */
const profiling = kernelProfilingOn();
const cpuNow = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

export function nativeKernelStats(): Record<string, { native: number; fallback: number; cpuMs?: number }> {
  return Object.fromEntries([...stats].map(([k, v]) => [k, { ...v }]));
}
export function resetNativeKernelStats(): void {
  for (const s of stats.values()) {
    s.native = 0;
    s.fallback = 0;
    if (s.cpuMs !== undefined) s.cpuMs = 0;
  }
}

function bodies(addon: NativeAddon): Record<(typeof NATIVE_KERNELS)[number], NativeKernelBody> {
  return {
    Conv2D: conv2dBody(addon),
    FusedConv2D: conv2dBody(addon),
    Conv2DBackpropInput: conv2dBackpropInputBody(addon),
    Conv2DBackpropFilter: conv2dBackpropFilterBody(addon),
    DepthwiseConv2dNative: conv2dBody(addon, true),
    FusedDepthwiseConv2D: conv2dBody(addon, true),
    DepthwiseConv2dNativeBackpropInput: conv2dBackpropInputBody(addon, true),
    DepthwiseConv2dNativeBackpropFilter: conv2dBackpropFilterBody(addon, true),
    BatchMatMul: batchMatMulBody(addon),
    _FusedMatMul: fusedMatMulBody(addon),
    MaxPool: maxPoolBody(addon),
    MaxPoolGrad: maxPoolGradBody(addon),
    Add: binaryBody(addon, 'Add'),
    Sub: binaryBody(addon, 'Sub'),
    Multiply: binaryBody(addon, 'Multiply'),
    RealDiv: binaryBody(addon, 'RealDiv'),
    Relu: unaryBody(addon, 'Relu'),
    Step: unaryBody(addon, 'Step'),
    Relu6: clipBody(addon, 'Relu6'),
    ClipByValue: clipBody(addon, 'ClipByValue'),
    PadV2: padBody(addon),
    Slice: sliceBody(addon),
    Tile: tileBody(addon),
    GreaterEqual: compareBody('GreaterEqual'),
    LessEqual: compareBody('LessEqual'),
    LogicalAnd: logicalAndBody(),
    Select: selectBody(),
    FusedBatchNorm: batchNormBody(addon),
    Sum: reduceBody(addon, 'Sum'),
    Mean: reduceBody(addon, 'Mean'),
  };
}

let registered = false;

/**
 * Registers `dptrain-native`: a fresh tfjs cpu backend instance with every cpu kernel, the heavy ones replaced by
 * oneDNN calls that read and write the cpu backend's Float32Arrays directly. Idempotent.
 */
export function registerNativeKernels(addon: NativeAddon): void {
  if (registered) return;
  const cpuFactory = tf.findBackendFactory('cpu');
  if (!cpuFactory) throw new Error('native backend: the tfjs cpu backend is not registered');
  // a cpu backend instance whose big native outputs are recycled (output-pool.ts)
  tf.registerBackend(
    NATIVE_BACKEND_NAME,
    () => {
      const b = cpuFactory() as tf.KernelBackend;
      outputPool.attach(b as unknown as PooledBackend);
      return b;
    },
    0,
  );
  const native = bodies(addon);
  for (const k of tf.getKernelsForBackend('cpu')) {
    const body = (native as Record<string, NativeKernelBody | undefined>)[k.kernelName];
    let kernelFunc: KernelFunc = k.kernelFunc;
    if (body) {
      const cpuFunc = k.kernelFunc;
      const name = k.kernelName;
      const s: { native: number; fallback: number; cpuMs?: number } = profiling ? { native: 0, fallback: 0, cpuMs: 0 } : { native: 0, fallback: 0 };
      stats.set(name, s);
      kernelFunc = (args) => {
        const t0 = profiling ? cpuNow() : 0;
        const out = body(args as unknown as Parameters<NativeKernelBody>[0] & { backend: CpuBackendLike });
        if (profiling) s.cpuMs! += cpuNow() - t0;
        if (out) {
          s.native++;
          return out;
        }
        s.fallback++;
        return cpuFunc(args) as TensorInfo;
      };
    }
    const config: KernelConfig = { ...k, backendName: NATIVE_BACKEND_NAME, kernelFunc };
    tf.registerKernel(config);
  }
  registerNativeGradients(addon, NATIVE_BACKEND_NAME);
  registered = true;
}
