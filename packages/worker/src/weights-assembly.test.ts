import { describe, expect, it } from 'vitest';
import { decodeMessage, encodeMessage, PROTOCOL_VERSION, type MessageOf } from '@dptrain/core';
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

  it('decoded straight into its memory (the codec destination): the same vectors, in place, also when buckets are decoded ahead', () => {
    const n = 20_000; // 80 KB a bucket: the codec's raw-blob path, received in 64 KiB fragments
    const total = 3 * n;
    const values = (version: number, k: number): Float32Array => Float32Array.from({ length: n }, (_, i) => version * 1e6 + k * n + i);
    const frames = (version: number): Buffer[][] =>
      [0, 1, 2].map((k) => {
        const f = encodeMessage({ type: 'weights_bucket', version, offset: k * n, total, weights: values(version, k), ack: false });
        const parts: Buffer[] = [];
        for (let at = 0; at < f.length; at += 65_536) parts.push(f.subarray(at, at + 65_536));
        return parts;
      });
    const expected = (version: number): number[] => [0, 1, 2].flatMap((k) => Array.from(values(version, k)));
    const a = new WeightsAssembly();
    const into = (h: Readonly<Record<string, unknown>>, key: string, bytes: number) => a.destination(h, key, bytes);
    const decode = (f: Buffer[]) => decodeMessage(f, Infinity, into) as MessageOf<'weights_bucket'>;
    const held: Float32Array[] = [];
    for (let version = 1; version <= 4; version++) {
      const msgs = frames(version).map(decode); // all three decoded before any is added
      let whole: Float32Array | undefined;
      for (const m of msgs) whole = a.add(m);
      expect(Array.from(whole!)).toEqual(expected(version));
      for (const m of msgs) expect(m.weights.buffer).toBe(whole!.buffer); // in place: no array of its own
      held.push(whole!);
    }
    expect(held[2]).toBe(held[0]); // warm memory, as with add alone
    expect(Array.from(held[3]!)).toEqual(expected(4));
    // version 6's first bucket arrives while version 5 is under way: decoded as usual (its own array), copied by add
    const v5 = frames(5);
    const v6 = frames(6);
    const m50 = decode(v5[0]!);
    const m51 = decode(v5[1]!);
    a.add(m50);
    a.add(m51);
    const m60 = decode(v6[0]!);
    expect(m60.weights.buffer).not.toBe(m50.weights.buffer);
    const five = a.add(decode(v5[2]!));
    expect(Array.from(five!)).toEqual(expected(5));
    a.add(m60);
    a.add(decode(v6[1]!));
    const six = a.add(decode(v6[2]!));
    expect(Array.from(six!)).toEqual(expected(6));
    expect(Array.from(five!)).toEqual(expected(5)); // left alone while 6 was put together
  });
});
