import { describe, expect, it } from 'vitest';
import { bucketRanges, isDptrainError, mergeGradientTree, PROTOCOL_VERSION, type MessageOf, type RangedGradient } from '@dptrain/core';
import { GradientAssembly } from './gradient-assembly.js';
import { StreamedMerge } from './streamed-merge.js';

/** A deterministic pseudo-random gradient of `size` floats for the samples [start, end). */
function part(start: number, end: number, size: number): RangedGradient {
  const g = new Float32Array(size);
  let x = (start * 7919 + end * 104729) >>> 0;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    g[i] = (x / 2 ** 32 - 0.5) * (1 + start);
  }
  return { gradients: g, loss: 0, count: end - start, correct: 0, start, end };
}

/** Runs a StreamedMerge over `parts`, fed bucket by bucket in `order` (part index, bucket index); returns what it sent. */
function collect(total: number, micro: number, size: number, bucketFloats: number) {
  const sent: { offset: number; values: Float32Array }[] = [];
  const merge = new StreamedMerge(total, micro, size, { bucketFloats, emit: (offset, _total, values) => sent.push({ offset, values: values.slice() }) });
  const whole = (): Float32Array => {
    const out = new Float32Array(size);
    for (const s of sent) out.set(s.values, s.offset);
    return out;
  };
  return { merge, sent, whole };
}

describe('StreamedMerge: an agent merges and sends each bucket as its parts come in', () => {
  const size = 1000;
  const bucketFloats = 64;
  const ranges = bucketRanges(size, bucketFloats);
  const total = 16;
  const micro = 2;
  const parts = [part(0, 8, size), part(8, 12, size), part(12, 16, size)]; // tree nodes of 8 micro-batches

  it('sends every bucket once, in order, with the bits of the whole merge, whatever order the buckets arrive in', () => {
    const reference = mergeGradientTree(parts, total, micro).gradients;
    for (let seed = 1; seed <= 20; seed++) {
      const { merge, sent, whole } = collect(total, micro, size, bucketFloats);
      const handles = parts.map((p) => merge.part(p.start, p.end));
      const next = parts.map(() => 0);
      let x = seed;
      while (next.some((k) => k < ranges.length)) {
        x = (x * 48271) % 2147483647;
        const i = x % parts.length;
        const k = next[i]!;
        if (k >= ranges.length) continue;
        handles[i]!.add(ranges[k]!.start, parts[i]!.gradients.subarray(ranges[k]!.start, ranges[k]!.end));
        next[i]!++;
        // never ahead of the slowest part
        expect(sent.length).toBe(Math.min(...next));
      }
      expect(merge.done).toBe(true);
      expect(sent.map((s) => s.offset)).toEqual(ranges.map((r) => r.start));
      expect(Buffer.from(whole().buffer).equals(Buffer.from(reference.buffer))).toBe(true);
    }
  });

  it('a part lost after some buckets went out: its redo (two sub-nodes) completes the rest; nothing sent twice, the same bits', () => {
    const reference = mergeGradientTree(parts, total, micro).gradients;
    const { merge, sent, whole } = collect(total, micro, size, bucketFloats);
    const [a, b, c] = parts.map((p) => merge.part(p.start, p.end));
    const feed = (h: typeof a, p: RangedGradient, from: number, to: number): void => {
      for (let k = from; k < to; k++) h!.add(ranges[k]!.start, p.gradients.subarray(ranges[k]!.start, ranges[k]!.end));
    };
    feed(a, parts[0]!, 0, ranges.length);
    feed(c, parts[2]!, 0, ranges.length);
    feed(b, parts[1]!, 0, 5);
    expect(sent).toHaveLength(5);
    b!.drop(); // lost: [8, 12) is redone as [8, 10) + [10, 12)
    const redo = [part(8, 10, size), part(10, 12, size)];
    // what the lost part would have given: the tree merge of its two halves (a node's mean whoever computes it)
    const merged = mergeGradientTree(
      redo.map((r) => ({ ...r, start: r.start - 8, end: r.end - 8 })),
      4,
      micro,
    ).gradients;
    parts[1]!.gradients.set(merged);
    const expected = mergeGradientTree(parts, total, micro).gradients;
    expect(
      Buffer.from(expected.buffer)
        .subarray(0, 5 * bucketFloats * 4)
        .equals(Buffer.from(reference.buffer).subarray(0, 5 * bucketFloats * 4)),
    ).toBe(false);
    const [r1, r2] = redo.map((r) => merge.part(r.start, r.end));
    feed(r1, redo[0]!, 0, ranges.length);
    expect(sent).toHaveLength(5); // [10, 12) missing: nothing more goes out
    feed(r2, redo[1]!, 0, ranges.length);
    expect(sent.map((s) => s.offset)).toEqual(ranges.map((r) => r.start));
    // the first 5 buckets came from the lost part's own buckets, the rest from its redo
    const got = whole();
    expect(
      Buffer.from(got.buffer)
        .subarray(0, 5 * bucketFloats * 4)
        .equals(Buffer.from(reference.buffer).subarray(0, 5 * bucketFloats * 4)),
    ).toBe(true);
    expect(
      Buffer.from(got.buffer)
        .subarray(5 * bucketFloats * 4)
        .equals(Buffer.from(expected.buffer).subarray(5 * bucketFloats * 4)),
    ).toBe(true);
  });

  it('a part refused (norm bound) after one of its buckets went out fails the step; before that, it just leaves', () => {
    const { merge } = collect(total, micro, size, bucketFloats);
    const hs = parts.map((p) => merge.part(p.start, p.end));
    hs[0]!.refuse('not sent yet'); // nothing of it went out: fine
    const later = merge.part(0, 8);
    for (const [i, h] of [later, hs[1]!, hs[2]!].entries()) h.add(0, parts[i]!.gradients.subarray(0, bucketFloats));
    let code: string | undefined;
    try {
      hs[1]!.refuse('too large');
    } catch (err) {
      code = isDptrainError(err) ? err.code : 'other';
    }
    expect(code).toBe('E_GRADIENT_NORM');
  });
});

describe('GradientAssembly: a request gradient from its grad_bucket frames', () => {
  const msg = (offset: number, values: number[], total = 6): MessageOf<'grad_bucket'> => ({
    v: PROTOCOL_VERSION,
    type: 'grad_bucket',
    id: 1,
    offset,
    total,
    dtype: 'fp32',
    gradients: Float32Array.from(values),
  });
  const codeOf = (f: () => unknown): string | undefined => {
    try {
      f();
    } catch (err) {
      return isDptrainError(err) ? `${err.code}: ${err.message}` : 'other';
    }
    return undefined;
  };

  it('puts the buckets together in order, hands each on, and refuses gaps, repeats, wrong totals, non-finite values and a short vector', () => {
    const seen: number[] = [];
    const a = new GradientAssembly('w1', 6, (offset) => seen.push(offset));
    a.add(msg(0, [1, 2, 3]));
    expect(codeOf(() => a.finish())).toMatch(/^E_GRADIENT_SHAPE: worker w1: its gradient buckets cover 3 of 6/);
    expect(codeOf(() => a.add(msg(0, [1, 2, 3])))).toMatch(/^E_GRADIENT_SHAPE: worker w1: gradient bucket \[0, 3\) of 6, expected one from 3/);
    expect(codeOf(() => a.add(msg(3, [1, 2, 3], 7)))).toMatch(/^E_GRADIENT_SHAPE/);
    expect(codeOf(() => a.add(msg(3, [4, Number.NaN, 6])))).toMatch(/^E_GRADIENT_NONFINITE: worker w1: gradient element 4 is NaN/);
    a.add(msg(3, [4, 5, 6]));
    expect(Array.from(a.finish())).toEqual([1, 2, 3, 4, 5, 6]);
    expect(seen).toEqual([0, 3]);
  });
});
