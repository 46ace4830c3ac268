import { describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION, type MessageOf } from '@dptrain/core';
import { WeightsAssembly } from './weights-assembly.js';

const bucket = (version: number, offset: number, values: number[], total: number): MessageOf<'weights_bucket'> => ({
  v: PROTOCOL_VERSION,
  type: 'weights_bucket',
  version,
  offset,
  total,
  weights: Float32Array.from(values),
  ack: false,
});

describe('WeightsAssembly', () => {
  it('returns the whole vector once the last bucket of a version is in, a fresh array each version', () => {
    const a = new WeightsAssembly();
    expect(a.add(bucket(3, 0, [1, 2], 5))).toBeUndefined();
    expect(a.add(bucket(3, 2, [3, 4], 5))).toBeUndefined();
    const first = a.add(bucket(3, 4, [5], 5));
    expect(Array.from(first!)).toEqual([1, 2, 3, 4, 5]);
    a.add(bucket(4, 0, [9, 9], 5));
    a.add(bucket(4, 2, [9, 9], 5));
    const second = a.add(bucket(4, 4, [9], 5));
    expect(Array.from(second!)).toEqual([9, 9, 9, 9, 9]);
    expect(Array.from(first!)).toEqual([1, 2, 3, 4, 5]); // the replica may still hold the previous one
    // the version after reuses the first array (warm memory), never the one just returned
    a.add(bucket(5, 0, [4, 4], 5));
    a.add(bucket(5, 2, [4, 4], 5));
    const third = a.add(bucket(5, 4, [4], 5));
    expect(third).toBe(first);
    expect(Array.from(third!)).toEqual([4, 4, 4, 4, 4]);
    expect(Array.from(second!)).toEqual([9, 9, 9, 9, 9]);
    expect(third).not.toBe(second);
  });

  it('a newer version starts over; a gap, a repeat or a bucket past the total is refused', () => {
    const a = new WeightsAssembly();
    a.add(bucket(1, 0, [1, 2], 4));
    expect(Array.from(a.add(bucket(2, 0, [7, 7, 7, 7], 4))!)).toEqual([7, 7, 7, 7]); // version 1 superseded
    a.add(bucket(5, 0, [1, 2], 6));
    expect(() => a.add(bucket(5, 4, [5, 6], 6))).toThrow(/offset 4, expected 2/);
    expect(() => new WeightsAssembly().add(bucket(1, 2, [1], 4))).toThrow(/expected 0/);
    expect(() => new WeightsAssembly().add(bucket(1, 0, [1, 2, 3], 2))).toThrow(/runs past its total/);
  });
});
