import type { GradientPrecision } from '../config.js';
import { DptrainError } from '../errors.js';
import { bfloat16ToFloat32, float32ToBfloat16 } from '../util/bf16.js';
import { float16ToFloat32, float32ToFloat16 } from './fp16.js';
import type { MessageOf } from './messages.js';
import { firstNonFinite } from '../training/vector-kernels.js';

export { firstNonFinite };

/** Packs a gradient vector for the wire in `precision` (fp32: the array itself, no copy). */
export function packGradients(g: Float32Array, precision: GradientPrecision): { dtype: GradientPrecision; gradients: Float32Array | Uint16Array } {
  if (precision === 'fp16') return { dtype: 'fp16', gradients: float32ToFloat16(g) };
  if (precision === 'bf16') return { dtype: 'bf16', gradients: float32ToBfloat16(g) };
  return { dtype: 'fp32', gradients: g };
}

/** A wire gradient as fp32 (a view of the fp32 payload itself, else decoded from fp16 / bf16 bit patterns). */
export function decodeWireGradients(dtype: GradientPrecision, gradients: Float32Array | Uint16Array): Float32Array {
  if (gradients instanceof Float32Array) return gradients;
  return dtype === 'bf16' ? bfloat16ToFloat32(gradients) : float16ToFloat32(gradients);
}

/**
 * Unpacks and checks a gradients message: the expected length (E_GRADIENT_SHAPE) and finite values
 * (E_GRADIENT_NONFINITE). `who` names the culprit (worker id) in the message; `offset` is where the payload starts in
 * the whole vector (a bucket's), so the element named is the vector's.
 */
export function unpackGradients(msg: Pick<MessageOf<'gradients'>, 'dtype' | 'gradients'>, expectedSize: number, who: string, offset = 0): Float32Array {
  const isF32 = msg.gradients instanceof Float32Array;
  if ((msg.dtype === 'fp32') !== isF32) {
    throw new DptrainError('E_GRADIENT_SHAPE', `worker ${who}: gradients dtype '${msg.dtype}' does not match the payload type`);
  }
  if (msg.gradients.length !== expectedSize) {
    throw new DptrainError('E_GRADIENT_SHAPE', `worker ${who}: gradient of length ${msg.gradients.length}, expected ${expectedSize}`);
  }
  const g = decodeWireGradients(msg.dtype, msg.gradients);
  const bad = firstNonFinite(g);
  if (bad >= 0) throw new DptrainError('E_GRADIENT_NONFINITE', `worker ${who}: gradient element ${offset + bad} is ${g[bad]}`);
  return g;
}
