import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNativeOptimizer } from './native-adam.js';
import { bucketRanges } from './buckets.js';
import { AdamOptimizer, SgdOptimizer, createOptimizer, hasAdamKernel, setAdamKernel, type FlatOptimizer, type OptimizerChoice } from './optimizers.js';

/** Deterministic pseudo-random floats in [-scale, scale). */
function floats(n: number, seed: number, scale = 1): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

const CHOICES: [string, OptimizerChoice][] = [
  ['adam', { optimizer: 'adam', momentum: 0, nesterov: false }],
  ['adamw', { optimizer: 'adamw', momentum: 0, nesterov: false }],
  ['sgd', { optimizer: 'sgd', momentum: 0, nesterov: false }],
  ['sgd + momentum', { optimizer: 'sgd', momentum: 0.9, nesterov: false }],
  ['sgd + nesterov + weight decay', { optimizer: 'sgd', momentum: 0.9, nesterov: true, weightDecay: 0.01 }],
];

/** `steps` updates of `n` weights, whole (`step`) or bucket by bucket (`beginStep` + `stepRange`, in `order`). */
function run(opt: FlatOptimizer, n: number, steps: number, bucket?: number, reversed = false): Float32Array {
  const w = floats(n, 1);
  for (let s = 0; s < steps; s++) {
    const g = floats(n, 100 + s, 0.5);
    if (bucket === undefined) {
      opt.step(w, g);
      continue;
    }
    opt.beginStep();
    const ranges = bucketRanges(n, bucket);
    for (const r of reversed ? ranges.reverse() : ranges) opt.stepRange(w.subarray(r.start, r.end), g.subarray(r.start, r.end), r.start);
  }
  return w;
}

function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

describe.each([
  ['JS', false],
  ['native Adam kernel', true],
] as const)('beginStep + stepRange = step, bit for bit (%s)', (_label, native) => {
  let skip = false;
  beforeAll(async () => {
    setAdamKernel(undefined);
    if (!native) return;
    skip = !(await useNativeOptimizer());
    if (skip) console.warn('[optimizer-ranges] native addon absent: the native Adam cases are skipped');
  });
  afterAll(() => setAdamKernel(undefined));

  it('runs through the kernel it names', () => {
    if (skip) return;
    expect(hasAdamKernel()).toBe(native);
  });

  it.each(CHOICES)('%s: 7 buckets in order, in reverse order, and one range, over 5 steps', (_name, choice) => {
    if (skip) return;
    const n = 1000;
    const whole = run(createOptimizer(choice, 0.01), n, 5);
    const ranged = run(createOptimizer(choice, 0.01), n, 5, 150);
    const backwards = run(createOptimizer(choice, 0.01), n, 5, 150, true);
    const single = run(createOptimizer(choice, 0.01), n, 5, n);
    expect(bitsEqual(ranged, whole)).toBe(true);
    expect(bitsEqual(backwards, whole)).toBe(true);
    expect(bitsEqual(single, whole)).toBe(true);
    // and the state continues identically: one more whole step on each
    const a = createOptimizer(choice, 0.01);
    const b = createOptimizer(choice, 0.01);
    run(a, n, 3);
    run(b, n, 3, 128);
    expect(a.iterations).toBe(3);
    expect(b.iterations).toBe(3);
    const sa = a.exportState();
    const sb = b.exportState();
    for (const k of Object.keys(sa.slots)) expect(bitsEqual(sb.slots[k]!, sa.slots[k]!)).toBe(true);
  });
});

describe('stepRange refusals and misuse', () => {
  it('Adam: a refused range changes nothing of its own; ranges updated before it stay updated', () => {
    setAdamKernel(undefined);
    const opt = new AdamOptimizer({ learningRate: 0.01 });
    const w = new Float32Array([1, 2, 3, 4]);
    const g = new Float32Array([0.1, 0.1, 1e30, 0.1]);
    opt.beginStep();
    opt.stepRange(w.subarray(0, 2), g.subarray(0, 2), 0);
    const after = w.slice();
    expect(() => opt.stepRange(w.subarray(2, 4), g.subarray(2, 4), 2)).toThrow(/E_OPTIMIZER_NONFINITE|weight 2's state/);
    expect(Array.from(w)).toEqual(Array.from(after));
    expect(w[2]).toBe(3);
  });

  it('Adam: a refused whole step leaves the step counter where it was', () => {
    const opt = new AdamOptimizer();
    const w = new Float32Array([1, 2]);
    expect(() => opt.step(w, new Float32Array([1e30, 0]))).toThrow();
    expect(opt.iterations).toBe(0);
    opt.step(w, new Float32Array([0.5, 0.5]));
    expect(opt.iterations).toBe(1);
  });

  it('Adam: stepRange before any beginStep is an internal error; a range of the wrong length is E_GRADIENT_SHAPE', () => {
    const opt = new AdamOptimizer();
    expect(() => opt.stepRange(new Float32Array(2), new Float32Array(2), 0)).toThrow(/beginStep/);
    opt.beginStep();
    expect(() => opt.stepRange(new Float32Array(2), new Float32Array(3), 0)).toThrow(/3 values, weights have 2/);
    expect(() => new SgdOptimizer().stepRange(new Float32Array(2), new Float32Array(1), 0)).toThrow(/1 values/);
  });

  it('beginStep advances the counter once per step whatever the number of ranges', () => {
    const opt = new SgdOptimizer({ momentum: 0.5 });
    run(opt, 64, 4, 10);
    expect(opt.iterations).toBe(4);
  });
});
