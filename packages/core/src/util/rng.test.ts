import { describe, expect, it } from 'vitest';
import { epochPermutation } from '../training/sharding.js';
import { mixSeed, mulberry32, rngFor, shuffleInPlace } from './rng.js';

// A frozen copy of the class that drew the epoch permutation before this module was the only RNG (training/rng.ts):
// checkpoints record only (seed, epoch), so a resumed run must redraw exactly these permutations.
class FrozenSeededRandom {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  nextInt(n: number): number {
    return Math.floor(this.next() * n);
  }
}

function frozenPermutation(n: number, seed: number, epoch: number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  const rng = new FrozenSeededRandom(mixSeed(seed, epoch, 0x5eed));
  for (let i = n - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  return order;
}

describe('the seeded-RNG module', () => {
  it('draws the same epoch permutations as the RNG that wrote existing checkpoints', () => {
    for (const [n, seed, epoch] of [
      [3600, 42, 0],
      [3600, 42, 14],
      [45, 7, 3],
      [1, 1, 0],
      [1000, 2 ** 31 + 5, 2 ** 33],
    ] as const) {
      expect(Array.from(epochPermutation(n, seed, epoch))).toEqual(frozenPermutation(n, seed, epoch));
    }
  });

  it('mulberry32 streams are the same for the same seed, whatever the array shuffled', () => {
    const a = shuffleInPlace(
      Array.from({ length: 20 }, (_, i) => i),
      rngFor(1, 2, 3),
    );
    const b = Array.from(
      shuffleInPlace(
        Int32Array.from({ length: 20 }, (_, i) => i),
        rngFor(1, 2, 3),
      ),
    );
    expect(b).toEqual(a);
    expect(a).not.toEqual(Array.from({ length: 20 }, (_, i) => i));
    const r1 = mulberry32(9);
    const r2 = mulberry32(9);
    expect([r1(), r1(), r1()]).toEqual([r2(), r2(), r2()]);
  });
});
