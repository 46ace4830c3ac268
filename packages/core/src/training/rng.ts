import { MULBERRY32_INCREMENT, mulberry32Output } from '../data/prng.js';

/**
 * The data pipeline's mulberry32 (data/prng.ts) as an object whose whole state is one 32-bit integer, so it can
 * be checkpointed and restored exactly. Used for the per-(seed, epoch) shuffles of the training recipe.
 */
export class SeededRandom {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** Uniform float in [0, 1). */
  next(): number {
    this.state = (this.state + MULBERRY32_INCREMENT) >>> 0;
    return mulberry32Output(this.state);
  }
  /** Uniform integer in [0, n). */
  nextInt(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/** Mixes several integers into one 32-bit seed (FNV-1a over their bytes, then a murmur finaliser). */
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
