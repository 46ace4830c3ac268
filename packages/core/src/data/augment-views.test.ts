import { describe, expect, it } from 'vitest';
import { augmentViewFor } from './augment-views.js';

describe('augmentViewFor', () => {
  it('shows each sample each of its K views once per cycle of K epochs', () => {
    for (const k of [2, 3, 5]) {
      for (let index = 0; index < 50; index++) {
        for (let cycle = 0; cycle < 3; cycle++) {
          const seen = Array.from({ length: k }, (_, e) => augmentViewFor(42, cycle * k + e, index, k));
          expect([...seen].sort()).toEqual(Array.from({ length: k }, (_, v) => v));
        }
      }
    }
  });

  it('draws per sample, per cycle and per seed, and the same draw every time', () => {
    const first = (seed: number, cycle: number) => Array.from({ length: 64 }, (_, i) => augmentViewFor(seed, cycle * 4, i, 4));
    expect(new Set(first(42, 0)).size).toBe(4);
    expect(first(42, 0)).toEqual(first(42, 0));
    expect(first(42, 1)).not.toEqual(first(42, 0));
    expect(first(7, 0)).not.toEqual(first(42, 0));
    expect(augmentViewFor(42, 9, 3, 1)).toBe(0);
  });

  it('refuses a view count that is not a positive integer', () => {
    expect(() => augmentViewFor(42, 0, 0, 0)).toThrow(/positive integer/);
    expect(() => augmentViewFor(42, 0, 0, 1.5)).toThrow(/positive integer/);
  });
});
