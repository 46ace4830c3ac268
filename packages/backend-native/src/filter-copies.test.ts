import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { loadAddon } from './addon.js';
import { NATIVE_BACKEND_NAME } from './backend.js';
import { setNativePrecision } from './index.js';
import { nativeOrSkipReason, onBoth, prng, randomData, relErr } from './native-backend.testutil.js';

/**
 * The addon keeps each filter's reordered copy (blocked layout, bf16) with the filter tensor's identity, and the next
 * call on that filter reads the copy: the backward-data pass of the same step, another micro-batch, a frozen layer's
 * next step. These check that it is used, and that it gives the bits of calls that reorder the Float32Array each time.
 */
const skipReason = await nativeOrSkipReason();
const precisions = skipReason === null && loadAddon().info().bf16Isa !== '' ? (['fp32', 'bf16'] as const) : (['fp32'] as const);
afterAll(() => {
  if (skipReason === null) {
    setNativePrecision('fp32');
    loadAddon().setFilterCopies(6);
    loadAddon().clearCache();
  }
});

// 3x3 stride 1 'same', 64 -> 64 channels at 9x9, batch 2: Winograd in fp32 (forward and backward data share the
// filter layout), bf16 in bf16 mode (the two take different layouts: backward data derives its copy; the forward's
// AcdB16b32a2b copy is made by the addon's own conversion, not oneDNN's reorder).
const xShape: [number, number, number, number] = [2, 9, 9, 64];
const wShape: [number, number, number, number] = [3, 3, 64, 64];
const conv = [1, 1, 1, 1, 1, 1, 1, 1];
// Ids far above those the backend's kernels hand out, so no tensor of another test can share them.
const ID = 1e12;

function forward(x: Float32Array, w: Float32Array, id: number): Float32Array {
  const y = new Float32Array(x.length);
  loadAddon().conv2d(x, xShape, w, wShape, null, y, xShape, conv, 1, id);
  return y;
}
function backwardData(dy: Float32Array, w: Float32Array, id: number): Float32Array {
  const dx = new Float32Array(dy.length);
  loadAddon().conv2dBackpropInput(dy, xShape, w, wShape, dx, xShape, conv, id);
  return dx;
}
const counts = () => ({ ...loadAddon().info().filterCopies });

describe.skipIf(skipReason !== null)('filter copies', () => {
  for (const precision of precisions) {
    it(`${precision}: three filters of one geometry, forward then backward, reuse their copies with the bits of fresh reorders`, () => {
      setNativePrecision(precision);
      const rand = prng(precision === 'fp32' ? 7 : 8);
      const x = randomData(rand, xShape).data;
      const dy = randomData(rand, xShape).data;
      const ws = [0, 1, 2].map(() => randomData(rand, wShape).data);
      // values whose bf16 rounding is special: ties (even and odd), the largest finite, denormals, signed zero
      ws[0]!.set([1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8), 3.3895313892515355e38, 1e-39, -1e-40, -0, 2 ** -126], 100);
      // without identities (id 0): every call reorders the Float32Array, as before the copies existed
      const ys = ws.map((w) => forward(x, w, 0));
      const dxs = ws.map((w) => backwardData(dy, w, 0));
      const c0 = counts();
      const ys2 = ws.map((w, i) => forward(x, w, ID + i));
      const dxs2 = [2, 1, 0].map((i) => backwardData(dy, ws[i]!, ID + i)).reverse();
      const c1 = counts();
      expect(c1.made - c0.made).toBe(3);
      // with AMX the forward takes AcdB16b32a2b, which the addon converts itself (other ISAs may take other layouts)
      if (precision === 'bf16' && loadAddon().info().bf16Isa === 'amx') expect(c1.converted - c0.converted).toBe(3);
      // fp32 Winograd: the backward pass reads the forward's copy as it is; bf16: reorders it bf16 to bf16
      if (precision === 'fp32') expect(c1.reused - c0.reused).toBe(3);
      else expect(c1.derived - c0.derived).toBe(3);
      ys2.forEach((y, i) => expect(Buffer.from(y.buffer).equals(Buffer.from(ys[i]!.buffer))).toBe(true));
      dxs2.forEach((dx, i) => expect(Buffer.from(dx.buffer).equals(Buffer.from(dxs[i]!.buffer))).toBe(true));
      // the same filter again (a frozen layer's next step): no reorder at all, same bits
      const again = forward(x, ws[0]!, ID);
      expect(counts().reused - c1.reused).toBe(1);
      expect(Buffer.from(again.buffer).equals(Buffer.from(ys[0]!.buffer))).toBe(true);
    });

    it(`${precision}: a filter whose values changed under the same identity is reordered again`, () => {
      setNativePrecision(precision);
      const rand = prng(11);
      const x = randomData(rand, xShape).data;
      const w = randomData(rand, wShape).data;
      forward(x, w, ID + 10);
      w[0] = w[0]! + 0.5; // the first value is among those the addon samples
      const c0 = counts();
      const y = forward(x, w, ID + 10);
      expect(counts().made - c0.made).toBe(1);
      expect(Buffer.from(y.buffer).equals(Buffer.from(forward(x, w, 0).buffer))).toBe(true);
    });

    it(`${precision}: with setFilterCopies(0) nothing is kept and every call reorders the filter, with the same bits`, () => {
      setNativePrecision(precision);
      const rand = prng(14);
      const x = randomData(rand, xShape).data;
      const w = randomData(rand, wShape).data;
      const y = forward(x, w, ID + 20);
      const addon = loadAddon();
      expect(addon.setFilterCopies(0)).toBe(0);
      try {
        const c0 = counts();
        const again = forward(x, w, ID + 20);
        expect(counts()).toEqual(c0);
        expect(Buffer.from(again.buffer).equals(Buffer.from(y.buffer))).toBe(true);
        expect(() => addon.setFilterCopies(-1)).toThrow('must be >= 0');
      } finally {
        expect(addon.setFilterCopies(6)).toBe(6);
      }
    });

    it(`${precision}: the filter gradient, moved from oneDNN's blocked layout to HWIO by the addon, matches tfjs's cpu kernel`, async () => {
      setNativePrecision(precision);
      const rand = prng(13);
      const { cpu, native } = await onBoth([randomData(rand, xShape), randomData(rand, wShape), randomData(rand, xShape)], (x, w, dy) =>
        tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf
            .conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same')
            .mul(dy!)
            .sum(),
        )([x!, w!]),
      );
      expect(relErr(native[1]!, cpu[1]!)).toBeLessThan(precision === 'fp32' ? 1e-4 : 2e-2);
      expect(relErr(native[0]!, cpu[0]!)).toBeLessThan(precision === 'fp32' ? 1e-4 : 2e-2);
    });

    it(`${precision}: tf.grads of a convolution reads the forward's filter copy in the backward pass`, () => {
      setNativePrecision(precision);
      tf.setBackend(NATIVE_BACKEND_NAME);
      const rand = prng(12);
      const x = tf.tensor(randomData(rand, xShape).data, xShape) as tf.Tensor4D;
      const w = tf.tensor(randomData(rand, wShape).data, wShape) as tf.Tensor4D;
      const c0 = counts();
      const grads = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf
          .conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same')
          .square()
          .sum(),
      )([x, w]);
      const c1 = counts();
      expect(c1.made - c0.made).toBe(1);
      expect(c1.reused + c1.derived - c0.reused - c0.derived).toBe(1);
      tf.dispose([x, w, ...grads]);
    });
  }
});
