import { describe, expect, it } from 'vitest';
import { AdamOptimizer } from './optimizers.js';
import { joinOptimizerStates, shardRanges, sliceOptimizerState } from './shard-ranges.js';

describe('shard ranges', () => {
  it('groups buckets into S contiguous ranges balanced by size, on bucket boundaries', () => {
    // 10 buckets of 100: 3 shards get 300 / 400 / 300 (boundaries nearest to 333 and 667)
    expect(shardRanges(1000, 3, 100)).toEqual([
      { start: 0, end: 300 },
      { start: 300, end: 700 },
      { start: 700, end: 1000 },
    ]);
    for (const [size, s, b] of [
      [9_200_000, 4, 1 << 20],
      [291, 2, 64],
      [28_035, 3, 64],
      [1000, 7, 10],
    ] as const) {
      const r = shardRanges(size, s, b);
      expect(r).toHaveLength(s);
      expect(r[0]!.start).toBe(0);
      expect(r[r.length - 1]!.end).toBe(size);
      for (let k = 0; k < r.length; k++) {
        if (k > 0) expect(r[k]!.start).toBe(r[k - 1]!.end);
        expect(r[k]!.start % b).toBe(0);
        // balanced: within one bucket of size / S
        expect(Math.abs(r[k]!.end - r[k]!.start - size / s)).toBeLessThanOrEqual(b);
      }
    }
  });

  it('gives fewer ranges than shards when there are fewer buckets, never an empty one', () => {
    expect(shardRanges(100, 4, 64)).toEqual([
      { start: 0, end: 64 },
      { start: 64, end: 100 },
    ]);
    expect(() => shardRanges(100, 0, 64)).toThrow(/positive integer/);
  });

  it('slices and joins optimizer state: ranges updated alone give the whole update, bit for bit', () => {
    const n = 1000;
    const w = Float32Array.from({ length: n }, (_, i) => Math.sin(i));
    const whole = new AdamOptimizer({ learningRate: 0.01 });
    const wWhole = w.slice();
    const ranges = shardRanges(n, 3, 128);
    const parts = ranges.map((range) => ({ range, opt: new AdamOptimizer({ learningRate: 0.01 }), w: w.slice(range.start, range.end) }));
    for (let step = 0; step < 5; step++) {
      const g = Float32Array.from({ length: n }, (_, i) => Math.cos(i * (step + 1)) * 1e-2);
      whole.step(wWhole, g);
      for (const p of parts) p.opt.step(p.w, g.slice(p.range.start, p.range.end));
    }
    const joined = new Float32Array(n);
    for (const p of parts) joined.set(p.w, p.range.start);
    expect(Array.from(joined)).toEqual(Array.from(wWhole));
    const state = joinOptimizerStates(
      parts.map((p) => ({ range: p.range, state: p.opt.exportState() })),
      n,
    );
    expect(state.iterations).toBe(5);
    expect(Array.from(state.slots.m!)).toEqual(Array.from(whole.exportState().slots.m!));
    const mid = ranges[1]!;
    expect(Array.from(sliceOptimizerState(state, mid).slots.v!)).toEqual(Array.from(whole.exportState().slots.v!.slice(mid.start, mid.end)));
    // ranges at different updates cannot make one state
    parts[0]!.opt.step(parts[0]!.w, new Float32Array(parts[0]!.w.length));
    expect(() =>
      joinOptimizerStates(
        parts.map((p) => ({ range: p.range, state: p.opt.exportState() })),
        n,
      ),
    ).toThrow(/disagree/);
  });
});
