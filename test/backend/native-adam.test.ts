// The native addon's compiled Adam step against core's JS loop: the same weights and slots, bit for bit, over
// several steps and a learning-rate change (checkpoints and cluster equivalence rely on that).
import { describe, expect, it } from 'vitest';
import { AdamOptimizer, mulberry32, setAdamKernel, hasAdamKernel, useNativeOptimizer } from '@dptrain/core';

function randomArray(n: number, seed: number, scale: number): Float32Array {
  const r = mulberry32(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale;
  return a;
}

const native = await useNativeOptimizer();
setAdamKernel(undefined);

describe.skipIf(!native)('native Adam kernel', () => {
  it('gives the same weights, m and v as the JS loop, bit for bit', async () => {
    const n = 300_001; // above the kernel's threading threshold, odd length
    const w0 = randomArray(n, 1, 0.05);
    const runs: { w: Float32Array; m: Float32Array; v: Float32Array }[] = [];
    for (const useKernel of [false, true]) {
      if (useKernel) expect(await useNativeOptimizer()).toBe(true);
      expect(hasAdamKernel()).toBe(useKernel);
      const opt = new AdamOptimizer({ learningRate: 1e-3 });
      const w = w0.slice();
      for (let step = 0; step < 5; step++) {
        if (step === 3) opt.learningRate = 1e-5;
        opt.step(w, randomArray(n, 100 + step, step === 2 ? 1e-8 : 0.3));
      }
      const state = opt.exportState();
      runs.push({ w, m: state.slots.m!, v: state.slots.v! });
    }
    setAdamKernel(undefined);
    const [js, nat] = runs as [(typeof runs)[0], (typeof runs)[0]];
    if (!js || !nat) throw new Error('two runs expected');
    expect(Buffer.compare(Buffer.from(nat.w.buffer), Buffer.from(js.w.buffer))).toBe(0);
    expect(Buffer.compare(Buffer.from(nat.m.buffer), Buffer.from(js.m.buffer))).toBe(0);
    expect(Buffer.compare(Buffer.from(nat.v.buffer), Buffer.from(js.v.buffer))).toBe(0);
    // and the update did move the weights
    expect(Buffer.compare(Buffer.from(js.w.buffer), Buffer.from(w0.buffer))).not.toBe(0);
  });

  it('gives the JS bits where only the exact finiteness check can clear an update (learning rate 1e34)', async () => {
    // |lr m| / eps exceeds FLT_MAX / 2, so the kernel's cheap bound cannot clear the step; the exact check does
    const n = 300_001;
    const w0 = randomArray(n, 7, 0.05);
    const g = randomArray(n, 8, 0.3);
    const out: Float32Array[] = [];
    for (const useKernel of [false, true]) {
      if (useKernel) expect(await useNativeOptimizer()).toBe(true);
      const opt = new AdamOptimizer({ learningRate: 1e34 });
      const w = w0.slice();
      opt.step(w, g);
      out.push(w);
    }
    setAdamKernel(undefined);
    expect(out[0]!.every((x) => Number.isFinite(x))).toBe(true);
    expect(Math.max(...out[0]!.subarray(0, 1000).map(Math.abs))).toBeGreaterThan(1e33);
    expect(Buffer.compare(Buffer.from(out[1]!.buffer), Buffer.from(out[0]!.buffer))).toBe(0);
  });

  it('is used by AdamOptimizer once registered, and dropped by setAdamKernel(undefined)', async () => {
    expect(await useNativeOptimizer()).toBe(true);
    expect(hasAdamKernel()).toBe(true);
    setAdamKernel(undefined);
    expect(hasAdamKernel()).toBe(false);
  });
});

describe.skipIf(!native)('native Adam kernel, non-finite state', () => {
  it('refuses a finite but huge gradient (1e25) with E_OPTIMIZER_NONFINITE and writes nothing', async () => {
    expect(await useNativeOptimizer()).toBe(true);
    try {
      const n = 300_001; // the threaded path
      const opt = new AdamOptimizer({ learningRate: 1e-3 });
      const w = randomArray(n, 3, 0.05);
      opt.step(w, randomArray(n, 4, 0.3));
      const before = { w: w.slice(), ...opt.exportState() };
      const g = randomArray(n, 5, 0.3);
      for (let i = 1000; i < n; i += 1000) g[i] = g[i]! * 1e25;
      expect(() => opt.step(w, g)).toThrow(expect.objectContaining({ code: 'E_OPTIMIZER_NONFINITE', message: expect.stringContaining('weight 1000') }));
      const after = opt.exportState();
      expect(after.iterations).toBe(before.iterations);
      expect(Buffer.compare(Buffer.from(w.buffer), Buffer.from(before.w.buffer))).toBe(0);
      expect(Buffer.compare(Buffer.from(after.slots.v!.buffer), Buffer.from(before.slots.v!.buffer))).toBe(0);
      expect(Buffer.compare(Buffer.from(after.slots.m!.buffer), Buffer.from(before.slots.m!.buffer))).toBe(0);
      // and it goes on training with a sane gradient, every slot finite
      opt.step(w, randomArray(n, 6, 0.3));
      expect(opt.exportState().slots.v!.every((x) => Number.isFinite(x))).toBe(true);
    } finally {
      setAdamKernel(undefined);
    }
  });
});
