import { expect } from 'vitest';

/** Seeded PRNG so every run checks the same random shapes (core's mulberry32). */
export { mulberry32 } from '@dptrain/core';

/** Uniform values in [-1, 1) for a shape. */
export function randomArray(rnd: () => number, shape: number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rnd() * 2 - 1;
  return out;
}

/**
 * Element-wise |got − want| ≤ rtol · max(|want|, scale), where scale is the largest |want| (so tiny
 * entries that are sums of cancelling terms are judged against the tensor's magnitude).
 */
export function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, rtol: number): void {
  expect(got.length).toBe(want.length);
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]!));
  let worst = 0;
  let worstAt = -1;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i]! - want[i]!) / Math.max(Math.abs(want[i]!), scale, 1e-12);
    if (!(err <= worst)) {
      worst = err;
      worstAt = i;
    }
  }
  expect(worst, `worst relative error ${worst} at ${worstAt}: got ${got[worstAt]} want ${want[worstAt]}`).toBeLessThanOrEqual(rtol);
}
