/**
 * The one seeded-RNG module: every random choice of a run (split, epoch permutations, augmentation, dropout masks,
 * head initialisation, synthetic data) draws from mulberry32 streams seeded by mixing integers, so that they are
 * derived from (seed, epoch, step, index) rather than carried as state (a checkpoint records only the seed and epoch).
 * `seedFrom` (splitmix32-style) and `mixSeed` (FNV-1a + murmur finaliser) are two seed mixers kept apart because each
 * is bit-compatible with the runs and checkpoints written before they lived here: data/augmentation seeds and the
 * epoch permutation respectively.
 */

/** A function returning uniform floats in [0, 1). */
export type Rng = () => number;

/** Mixes a 32-bit integer (splitmix32 finaliser). */
export function mix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** Derives one 32-bit seed from any number of integers (order matters). */
export function seedFrom(...parts: number[]): number {
  let h = 0x1234567;
  for (const p of parts) {
    // Fold in both halves so seeds/indices beyond 2^32 still differ.
    const lo = p | 0;
    const hi = Math.floor(p / 4294967296) | 0;
    h = mix32(h ^ lo);
    h = mix32(h ^ hi);
  }
  return h >>> 0;
}

/** mulberry32's state increment: each draw adds it to the 32-bit state, then tempers the state into the output. */
export const MULBERRY32_INCREMENT = 0x6d2b79f5;

/** mulberry32's output for a state that was just advanced: a uniform float in [0, 1). */
export function mulberry32Output(state: number): number {
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

/** mulberry32: fast 32-bit-state PRNG, uniform floats in [0, 1). */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + MULBERRY32_INCREMENT) | 0;
    return mulberry32Output(a);
  };
}

/** An Rng seeded from several integers, e.g. `rngFor(seed, epoch, index)`. */
export function rngFor(...parts: number[]): Rng {
  return mulberry32(seedFrom(...parts));
}

/** Uniform float in [lo, hi). */
export function uniform(rng: Rng, lo: number, hi: number): number {
  return lo + (hi - lo) * rng();
}

/** Uniform integer in [lo, hi] (inclusive). */
export function randInt(rng: Rng, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

/** In-place Fisher–Yates shuffle (from the last item down, j = floor(rng() * (i + 1))). */
export function shuffleInPlace<T, A extends { length: number; [i: number]: T }>(items: A, rng: Rng): A {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const tmp = items[i] as T;
    items[i] = items[j] as T;
    items[j] = tmp;
  }
  return items;
}

/** Mixes several integers into one 32-bit seed (FNV-1a over their bytes, then a murmur finaliser); the epoch permutation's seed. */
export function mixSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    let v = Math.trunc(p);
    for (let i = 0; i < 8; i++) {
      h ^= v & 0xff;
      h = Math.imul(h, 0x01000193) >>> 0;
      v = Math.floor(v / 256);
    }
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}
