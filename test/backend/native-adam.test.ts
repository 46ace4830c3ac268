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

  it('is used by AdamOptimizer once registered, and dropped by setAdamKernel(undefined)', async () => {
    expect(await useNativeOptimizer()).toBe(true);
    expect(hasAdamKernel()).toBe(true);
    setAdamKernel(undefined);
    expect(hasAdamKernel()).toBe(false);
  });
});
