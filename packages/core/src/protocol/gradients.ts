import { DptrainError } from '../errors.js';
import { float16ToFloat32, float32ToFloat16 } from './fp16.js';
import type { MessageOf } from './messages.js';

/** Packs a gradient vector for the wire. */
export function packGradients(g: Float32Array, fp16: boolean): { dtype: 'fp32' | 'fp16'; gradients: Float32Array | Uint16Array } {
  return fp16 ? { dtype: 'fp16', gradients: float32ToFloat16(g) } : { dtype: 'fp32', gradients: g };
}

/**
 * Unpacks and checks a gradients message: the expected length (E_GRADIENT_SHAPE) and finite values
 * (E_GRADIENT_NONFINITE). `who` names the culprit (worker id) in the message.
 */
export function unpackGradients(msg: Pick<MessageOf<'gradients'>, 'dtype' | 'gradients'>, expectedSize: number, who: string): Float32Array {
  const isF32 = msg.gradients instanceof Float32Array;
  if ((msg.dtype === 'fp32') !== isF32) {
    throw new DptrainError('E_GRADIENT_SHAPE', `worker ${who}: gradients dtype '${msg.dtype}' does not match the payload type`);
  }
  if (msg.gradients.length !== expectedSize) {
    throw new DptrainError('E_GRADIENT_SHAPE', `worker ${who}: gradient of length ${msg.gradients.length}, expected ${expectedSize}`);
  }
  const g = msg.gradients instanceof Float32Array ? msg.gradients : float16ToFloat32(msg.gradients);
  const bad = firstNonFinite(g);
  if (bad >= 0) throw new DptrainError('E_GRADIENT_NONFINITE', `worker ${who}: gradient element ${bad} is ${g[bad]}`);
  return g;
}

/** Index of the first NaN or ±Infinity in `g`, or -1 when every value is finite (one fast pass when all are). */
export function firstNonFinite(g: Float32Array): number {
  let bad = 0;
  for (let i = 0; i < g.length; i++) {
    const x = g[i]!;
    bad += x - x; // 0 for finite x, NaN for NaN and ±Infinity
  }
  if (bad === 0) return -1;
  for (let i = 0; i < g.length; i++) if (!Number.isFinite(g[i]!)) return i;
  return -1;
}
