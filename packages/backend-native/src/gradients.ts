// Fused gradients for the native backend. tfjs's gradient functions for batch norm and clipping run 6-9 elementwise
// kernels each over the whole activation (for batch norm: x - mean, dy * scale, a tile of rsqrt(var), two products
// for dx, two for the scale's gradient, two sums); on MobileNetV2's fine-tuned blocks they were half of a training
// step. Here each is one pass of the addon (native/gradients.cc) with the same bits. Their gradient functions are
// replaced globally (tfjs keys gradients by kernel name, not by backend), so each one first checks that the native
// backend is the active one and that the case is covered, and otherwise runs tfjs's own gradient function unchanged.
import * as tf from '@tensorflow/tfjs';
import type { GradConfig, KernelConfig, NamedAttrMap, Tensor, TensorInfo } from '@tensorflow/tfjs';
import type { NativeAddon } from './addon.js';
import { alloc, f32, size, type CpuBackendLike } from './kernels/util.js';

/** The addon kernel behind the batch-norm gradient: inputs x, dy, mean, rsqrtVar, scale; outputs dx, dScale, dOffset. */
export const BATCH_NORM_GRAD_KERNEL = 'DptrainBatchNormGrad';
/** The addon kernel behind the ClipByValue gradient: inputs dy, x; attrs clipValueMin, clipValueMax. */
export const CLIP_GRAD_KERNEL = 'DptrainClipByValueGrad';

function floats(backend: CpuBackendLike, t: TensorInfo | undefined, what: string): Float32Array {
  const v = f32(backend, t);
  if (!v) throw new Error(`${what}: not float32 data on the native backend`);
  return v;
}

function kernels(addon: NativeAddon, backendName: string): KernelConfig[] {
  return [
    {
      kernelName: CLIP_GRAD_KERNEL,
      backendName,
      kernelFunc: ({ inputs, backend, attrs }) => {
        const b = backend as unknown as CpuBackendLike;
        const { dy, x } = inputs as { dy: TensorInfo; x: TensorInfo };
        const out = alloc(size(dy.shape));
        addon.clipGrad(floats(b, dy, 'dy'), floats(b, x, 'x'), out, Number(attrs?.clipValueMin), Number(attrs?.clipValueMax));
        return b.makeTensorInfo(dy.shape, 'float32', out);
      },
    },
    {
      kernelName: BATCH_NORM_GRAD_KERNEL,
      backendName,
      kernelFunc: ({ inputs, backend }) => {
        const b = backend as unknown as CpuBackendLike;
        const { x, dy, mean, rsqrtVar, scale } = inputs as Record<string, TensorInfo>;
        const c = mean!.shape[0]!;
        const dx = alloc(size(x!.shape));
        const dScale = new Float32Array(c);
        const dOffset = new Float32Array(c);
        addon.batchNormGrad(
          floats(b, x, 'x'),
          floats(b, dy, 'dy'),
          floats(b, mean, 'mean'),
          floats(b, rsqrtVar, 'rsqrtVar'),
          floats(b, scale, 'scale'),
          dx,
          dScale,
          dOffset,
          c,
        );
        return [b.makeTensorInfo(x!.shape, 'float32', dx), b.makeTensorInfo([c], 'float32', dScale), b.makeTensorInfo([c], 'float32', dOffset)];
      },
    },
  ];
}

const calls = { batchNorm: 0, clip: 0 };
/** How many gradients the fused kernels computed in this process (tests: the fused path really ran). */
export function fusedGradientCalls(): { batchNorm: number; clip: number } {
  return { ...calls };
}

const isF32 = (...ts: (Tensor | undefined)[]) => ts.every((t) => t !== undefined && t.dtype === 'float32' && t.size > 0);

function clipGradient(original: GradConfig, backendName: string): GradConfig {
  return {
    ...original,
    gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
      const x = saved[0];
      const lo = Number(attrs.clipValueMin);
      const hi = Number(attrs.clipValueMax);
      if (
        tf.getBackend() !== backendName ||
        Array.isArray(dy) ||
        !isF32(dy, x) ||
        !tf.util.arraysEqual(dy.shape, x!.shape) ||
        Number.isNaN(lo) ||
        Number.isNaN(hi)
      ) {
        return original.gradFunc(dy, saved, attrs);
      }
      calls.clip++;
      return { x: () => tf.engine().runKernel(CLIP_GRAD_KERNEL, { dy, x: x! }, attrs) as Tensor };
    },
  };
}

function batchNormGradient(original: GradConfig, backendName: string): GradConfig {
  return {
    ...original,
    gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
      const [x, mean, variance, scale] = saved;
      const c = x?.shape[x.rank - 1];
      const perChannel = (t: Tensor | undefined) => t !== undefined && t.rank === 1 && t.shape[0] === c;
      if (
        tf.getBackend() !== backendName ||
        Array.isArray(dy) ||
        !isF32(dy, x, mean, variance, scale) ||
        x!.rank < 2 ||
        !tf.util.arraysEqual(dy.shape, x!.shape) ||
        ![mean, variance, scale].every(perChannel)
      ) {
        return original.gradFunc(dy, saved, attrs);
      }
      // Computed here, not in the per-input functions: tfjs runs each of those in its own tidy, which would dispose
      // the other two outputs. What is not asked for is disposed with the backward pass's scope.
      const rsqrtVar = tf.rsqrt(tf.add(variance!, tf.scalar(Number(attrs.varianceEpsilon))));
      const [dx, dScale, dOffset] = tf.engine().runKernel(BATCH_NORM_GRAD_KERNEL, { x: x!, dy, mean: mean!, rsqrtVar, scale: scale! }, {}) as Tensor[];
      rsqrtVar.dispose();
      calls.batchNorm++;
      // (the moving statistics are not trained; should a caller ask, tfjs's own formula answers, in that tidy)
      const other = (name: 'mean' | 'variance') => () => original.gradFunc(dy, saved, attrs)[name]!();
      return { x: () => dx!, scale: () => dScale!, offset: () => dOffset!, mean: other('mean'), variance: other('variance') };
    },
  };
}

/** Registers the fused gradient kernels for `backendName` and puts the gradient functions that use them in place. */
export function registerNativeGradients(addon: NativeAddon, backendName: string): void {
  for (const k of kernels(addon, backendName)) tf.registerKernel(k);
  tf.registerGradient(clipGradient(tf.getGradient('ClipByValue'), backendName));
  tf.registerGradient(batchNormGradient(tf.getGradient('FusedBatchNorm'), backendName));
}
