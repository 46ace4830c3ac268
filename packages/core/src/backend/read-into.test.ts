import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { readTensorInto } from './read-into.js';

describe('readTensorInto', () => {
  it('copies a tensor into an array at an offset (plain cpu backend: through dataSync)', async () => {
    await tf.setBackend('cpu');
    const t = tf.tensor1d([1.5, -2, 3]);
    const dst = new Float32Array(5).fill(9);
    readTensorInto(t, dst, 1);
    expect(Array.from(dst)).toEqual([9, 1.5, -2, 3, 9]);
    t.dispose();
  });

  it("uses the backend's readInto when it has one, and falls back when it declines", async () => {
    await tf.setBackend('cpu');
    const b = tf.engine().backend as unknown as { readInto?: (id: object, dst: Float32Array, off: number) => boolean };
    const t = tf.tensor1d([4, 5]);
    const calls: number[] = [];
    b.readInto = (_id, dst, off) => {
      calls.push(off);
      dst[off] = 42; // marks that this path ran
      return off === 0;
    };
    try {
      const dst = new Float32Array(4);
      readTensorInto(t, dst, 0);
      expect(Array.from(dst)).toEqual([42, 0, 0, 0]);
      readTensorInto(t, dst, 2); // declined: dataSync path
      expect(Array.from(dst)).toEqual([42, 0, 4, 5]);
      expect(calls).toEqual([0, 2]);
    } finally {
      delete b.readInto;
      t.dispose();
    }
  });
});
