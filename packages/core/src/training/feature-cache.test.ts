import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunConfig } from '../config.js';
import { augmentViewFor } from '../data/augment-views.js';
import type { LoadBatchOptions } from '../data/loader.js';
import type { Sample } from '../data/types.js';
import { FeatureCache } from './feature-cache.js';
import { createReplica, type BatchSource, type ReplicaOptions } from './replica.js';
import { samplesOf, syntheticImages, tinyConfig } from './replica.testutil.js';

let tmp: string;
beforeAll(async () => {
  await tf.setBackend('cpu');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dptrain-cache-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Counts the images a replica decodes. */
function counting(inner: BatchSource): BatchSource & { images: number; epochs: number[]; decoded: string[] } {
  const src = {
    images: 0,
    /** The augmentation epochs of each batch decoded (one per batch when all its samples share it). */
    epochs: [] as number[],
    /** `index@epoch` of every image decoded, in order. */
    decoded: [] as string[],
    async loadBatch(samples: readonly Sample[], opts?: LoadBatchOptions) {
      src.images += samples.length;
      const each = samples.map((_, i) => opts?.epochs?.[i] ?? opts?.epoch ?? 0);
      src.epochs.push(...new Set(each));
      samples.forEach((s, i) => src.decoded.push(`${s.index}@${each[i]}`));
      return inner.loadBatch(samples, opts);
    },
  };
  return src;
}

/** Head phase then fine-tune, SGD on the flat vectors; returns the final weights of both phases. */
async function train(config: RunConfig, options: ReplicaOptions, stepsPerPhase: number) {
  const r = await createReplica(config, options);
  const data = samplesOf(8);
  const out: Float32Array[] = [];
  let step = 0;
  for (const phase of ['head', 'fine_tune'] as const) {
    await r.setPhase(phase);
    let w = r.getWeights();
    for (let s = 0; s < stepsPerPhase; s++, step++) {
      const batch = data.slice((s % 2) * 4, (s % 2) * 4 + 4);
      const g = await r.computeGradients(batch, { phase, epoch: Math.floor(s / 2), step });
      w = w.map((v, i) => v - 0.1 * g.gradients[i]!);
      r.setWeights(w);
    }
    out.push(r.getWeights());
  }
  const stats = r.cacheStats;
  r.dispose();
  return { weights: out, stats };
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(a[i]!));
  }
  return m / scale;
}

describe('FeatureCache', () => {
  it('keeps a bounded LRU in memory, spills to disk, and returns exactly what it stored', () => {
    const c = new FeatureCache({ namespace: 'ns-a', dir: tmp, maxMemoryBytes: 3 * 100 * 2, fp16: true });
    const rows = Array.from({ length: 5 }, (_, i) => Float32Array.from({ length: 100 }, (_, j) => Math.sin(i + j * 0.37) * 3));
    const stored = rows.map((r, i) => c.put(`k${i}`, r));
    expect(c.stats.memoryEntries).toBe(3);
    expect(c.stats.spilled).toBe(2);
    stored.forEach((s, i) => {
      const back = c.get(`k${i}`)!;
      expect(Array.from(back)).toEqual(Array.from(s));
      expect(maxRelDiff(rows[i]!, back)).toBeLessThan(1e-3);
    });
    expect(c.stats.diskHits).toBeGreaterThan(0);
    expect(c.get('absent')).toBeUndefined();
    // A new cache on the same folder and namespace finds the spilled files; another namespace does not.
    expect(new FeatureCache({ namespace: 'ns-a', dir: tmp }).get('k0')).toBeDefined();
    expect(new FeatureCache({ namespace: 'ns-b', dir: tmp }).get('k0')).toBeUndefined();
  });

  it('writeThrough: an entry stored by one cache is read by another sharing the folder (local workers)', () => {
    const dir = path.join(tmp, 'shared');
    const a = new FeatureCache({ namespace: 'ns-shared', dir, writeThrough: true });
    const b = new FeatureCache({ namespace: 'ns-shared', dir, writeThrough: true });
    const spill = new FeatureCache({ namespace: 'ns-spill', dir });
    const row = Float32Array.from({ length: 50 }, (_, j) => j / 7);
    const stored = a.put('s1', row);
    expect(Array.from(b.get('s1')!)).toEqual(Array.from(stored));
    expect(b.stats.diskHits).toBe(1);
    // without write-through nothing reaches the folder until memory overflows
    spill.put('s1', row);
    expect(new FeatureCache({ namespace: 'ns-spill', dir }).get('s1')).toBeUndefined();
    expect(fs.readdirSync(path.join(dir)).length).toBe(2);
  });
});

describe('training from cached frozen features', () => {
  it('gives the same weights as training from images (fp32 cache: identical; frozen part computed once per sample)', async () => {
    const config = tinyConfig();
    const plainSrc = counting(syntheticImages);
    const cachedSrc = counting(syntheticImages);
    const plain = await train(config, { images: plainSrc, cache: false }, 6);
    const cached = await train(config, { images: cachedSrc, cacheFp16: false, cacheDir: path.join(tmp, 'fp32'), cacheMemoryBytes: 600 }, 6);
    expect(cached.weights[0]!.length).toBeLessThan(cached.weights[1]!.length);
    expect(Array.from(cached.weights[0]!)).toEqual(Array.from(plain.weights[0]!));
    expect(Array.from(cached.weights[1]!)).toEqual(Array.from(plain.weights[1]!));
    expect(plainSrc.images).toBe(48);
    // One frozen pass per sample: phase 1 stores block5_pool and, on the way, block4_pool for phase 2.
    expect(cachedSrc.images).toBe(8);
    expect(cached.stats!.spilled).toBeGreaterThan(0);
    expect(cached.stats!.diskHits).toBeGreaterThan(0);
  });

  it('fp16 cache stays within fp16 tolerance of training from images', async () => {
    const config = tinyConfig();
    const plain = await train(config, { images: syntheticImages, cache: false }, 6);
    const cached = await train(config, { images: syntheticImages, cacheFp16: true }, 6);
    for (let p = 0; p < 2; p++) {
      const d = maxRelDiff(plain.weights[p]!, cached.weights[p]!);
      expect(d).toBeGreaterThan(0);
      expect(d).toBeLessThan(5e-3);
    }
  });

  it('with augmentation and cachedViews K, caches K views per image and each epoch draws one per image', async () => {
    const K = 3;
    const config = tinyConfig({ augmentation: { horizontalFlip: true }, cachedViews: K });
    const src = counting(syntheticImages);
    const r = await createReplica(config, { images: src });
    expect(r.cacheEnabled).toBe(true);
    const batch = samplesOf(8);
    const decodedIn: string[][] = [];
    for (let epoch = 0; epoch < 2 * K; epoch++) {
      const before = src.decoded.length;
      await r.computeGradients(batch, { phase: 'head', epoch, step: 3 });
      decodedIn.push(src.decoded.slice(before));
    }
    // each image's view of an epoch is augmentViewFor's pick, decoded the first time it is drawn only
    for (let epoch = 0; epoch < K; epoch++) expect(decodedIn[epoch]).toEqual(batch.map((s) => `${s.index}@${augmentViewFor(config.seed, epoch, s.index, K)}`));
    for (let epoch = K; epoch < 2 * K; epoch++) expect(decodedIn[epoch]).toEqual([]);
    expect(src.images).toBe(K * batch.length);
    // one view per image, not one per epoch: the first epoch already mixes views
    expect(new Set(batch.map((s) => augmentViewFor(config.seed, 0, s.index, K))).size).toBeGreaterThan(1);
    r.dispose();
    // With cachedViews 0, augmentation turns the cache off and each epoch draws its own view.
    const src2 = counting(syntheticImages);
    const r2 = await createReplica(tinyConfig({ augmentation: { horizontalFlip: true }, cachedViews: 0 }), { images: src2 });
    expect(r2.cacheEnabled).toBe(false);
    for (let epoch = 0; epoch < 3; epoch++) await r2.computeGradients(batch, { phase: 'head', epoch, step: 3 });
    expect(src2.epochs).toEqual([0, 1, 2]);
    r2.dispose();
  });
});
