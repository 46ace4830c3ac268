import { describe, expect, it } from 'vitest';
import { createOptimizer, DptrainError, type MessageOf, PROTOCOL_VERSION } from '@dptrain/core';
import { RangeOwner } from './range-owner.js';

const choice = { optimizer: 'adam' as const, momentum: 0, nesterov: false };
/** The shard that owns elements 100..106 of a 200-float vector. */
const owner = () =>
  new RangeOwner(
    { generation: 1, range: { start: 100, end: 106 }, size: 200, weights: new Float32Array(6), optimizer: createOptimizer(choice, 1e-3).exportState() },
    choice,
  );
const piece = (offset: number, values: number[]): MessageOf<'grad_range'> => ({
  v: PROTOCOL_VERSION,
  type: 'grad_range',
  request: 7,
  offset,
  dtype: 'fp32',
  gradients: Float32Array.from(values),
});
const codeOf = (f: () => void): string => {
  try {
    f();
  } catch (err) {
    return err instanceof DptrainError ? `${err.code}: ${err.message}` : String(err);
  }
  return 'no error';
};

describe('RangeOwner.accept: the pieces of a sender’s gradient range', () => {
  it('a non-finite value is named by its element of the whole vector, not of the piece', () => {
    const o = owner();
    o.accept('a1', piece(100, [1, 2, 3]));
    expect(codeOf(() => o.accept('a1', piece(103, [4, Number.POSITIVE_INFINITY, 6])))).toMatch(
      /^E_GRADIENT_NONFINITE: worker a1: gradient element 104 is Infinity/,
    );
  });

  it('pieces out of order or past the range are refused, naming the sender and the expected offset', () => {
    const o = owner();
    expect(codeOf(() => o.accept('a2', piece(103, [1])))).toMatch(/^E_GRADIENT_SHAPE: sender a2: gradient piece \[103, 104\), expected one from 100/);
    o.accept('a2', piece(100, [1, 2, 3, 4]));
    expect(codeOf(() => o.accept('a2', piece(104, [5, 6, 7])))).toMatch(/^E_GRADIENT_SHAPE: sender a2: gradient piece \[104, 107\)/);
    expect(o.has([{ sender: 'a2', request: 7, start: 100, end: 106 }])).toBe(false);
    o.accept('a2', piece(104, [5, 6]));
    expect(o.has([{ sender: 'a2', request: 7, start: 100, end: 106 }])).toBe(true);
  });
});
