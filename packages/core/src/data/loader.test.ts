import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { ImageBatchLoader } from './loader.js';
import type { Sample } from './types.js';
import { isDptrainError } from '../errors.js';

/** Writes n solid-colour PNGs (colour i = (i*20, 100, 255-i*20)) of 6x4 and returns their samples. */
async function solidSamples(n: number): Promise<Sample[]> {
  const dir = mkdtempSync(join(tmpdir(), 'dp-load-'));
  const out: Sample[] = [];
  for (let i = 0; i < n; i++) {
    const path = join(dir, `${i}.png`);
    await sharp({ create: { width: 6, height: 4, channels: 3, background: { r: i * 20, g: 100, b: 255 - i * 20 } } })
      .png()
      .toFile(path);
    out.push({ split: 'labelled', index: i, name: `${i}.png`, path, label: i % 3 });
  }
  return out;
}

describe('ImageBatchLoader', () => {
  it('loads a batch NHWC in sample order with labels', async () => {
    const samples = await solidSamples(5);
    const loader = new ImageBatchLoader({ inputSize: [3, 5], preprocess: 'unit', concurrency: 3 });
    const b = await loader.loadBatch(samples);
    expect(b.shape).toEqual([5, 3, 5, 3]);
    expect(b.data.length).toBe(5 * 3 * 5 * 3);
    expect(Array.from(b.labels)).toEqual([0, 1, 2, 0, 1]);
    for (let i = 0; i < 5; i++) {
      const o = i * 45;
      expect(b.data[o]).toBeCloseTo((i * 20) / 255, 5);
      expect(b.data[o + 2]).toBeCloseTo((255 - i * 20) / 255, 5);
      expect(b.data[o + 44]).toBeCloseTo((255 - i * 20) / 255, 5);
    }
  });

  it('iterates batches in order with bounded prefetch', async () => {
    const samples = await solidSamples(7);
    const loader = new ImageBatchLoader({ inputSize: [4, 4], preprocess: 'caffe', prefetch: 2 });
    let inFlight = 0;
    let maxInFlight = 0;
    const orig = loader.loadBatch.bind(loader);
    loader.loadBatch = async (s, o) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        return await orig(s, o);
      } finally {
        inFlight--;
      }
    };
    const groups = [samples.slice(0, 3), samples.slice(3, 6), samples.slice(6)];
    const seen: string[][] = [];
    for await (const b of loader.batches([...groups, ...groups])) {
      seen.push(b.samples.map((s) => s.name));
      expect(b.shape[0]).toBe(b.samples.length);
      // red channel of caffe output is at index 2: R - 123.68
      expect(b.data[2]).toBeCloseTo(b.samples[0]!.index * 20 - 123.68, 3);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(seen).toEqual([...groups, ...groups].map((g) => g.map((s) => s.name)));
    expect(maxInFlight).toBeLessThanOrEqual(2);
    expect(maxInFlight).toBeGreaterThanOrEqual(1);
  });

  it('augmentation is deterministic per (seed, epoch, index) and off unless asked', async () => {
    const samples = await solidSamples(2);
    // make a non-uniform image so flips are visible
    const path = samples[0]!.path.replace('0.png', 'grad.png');
    const raw = Buffer.alloc(8 * 8 * 3);
    for (let i = 0; i < 64; i++) raw[i * 3] = (i % 8) * 30;
    await sharp(raw, { raw: { width: 8, height: 8, channels: 3 } })
      .png()
      .toFile(path);
    const s: Sample = { ...samples[0]!, path };
    const mk = () => new ImageBatchLoader({ inputSize: [8, 8], preprocess: 'unit', seed: 3, augmentation: { rotationRange: 30, horizontalFlip: true } });
    const a = await mk().loadBatch([s], { epoch: 1, augment: true });
    const b = await mk().loadBatch([s], { epoch: 1, augment: true });
    const c = await mk().loadBatch([s], { epoch: 2, augment: true });
    const plain = await mk().loadBatch([s], { epoch: 1 });
    expect(Array.from(a.data)).toEqual(Array.from(b.data));
    expect(Array.from(a.data)).not.toEqual(Array.from(c.data));
    expect(plain.data[3]).toBeCloseTo(30 / 255, 5);
    // per-sample epochs: each image of the batch drawn for its own epoch
    const mixed = await mk().loadBatch([s, s], { epochs: [1, 2], augment: true });
    const size = a.data.length;
    expect(Array.from(mixed.data.subarray(0, size))).toEqual(Array.from(a.data));
    expect(Array.from(mixed.data.subarray(size))).toEqual(Array.from(c.data));
  });

  it('rejects with E_DATA_IMAGE naming the file', async () => {
    const samples = await solidSamples(1);
    const bad: Sample = { ...samples[0]!, path: '/nonexistent/x.jpg' };
    const loader = new ImageBatchLoader({ inputSize: [4, 4], preprocess: 'tf' });
    const err = await loader.loadBatch([samples[0]!, bad]).catch((e: unknown) => e);
    expect(isDptrainError(err, 'E_DATA_IMAGE')).toBe(true);
    expect((err as Error).message).toContain('/nonexistent/x.jpg');
  });

  it('batches(): an error surfaces when its batch is reached; break stops further decoding', async () => {
    const samples = await solidSamples(4);
    const bad: Sample = { ...samples[0]!, path: '/nonexistent/y.jpg' };
    const loader = new ImageBatchLoader({ inputSize: [4, 4], preprocess: 'unit', prefetch: 1 });
    const got: number[] = [];
    const err = await (async () => {
      for await (const b of loader.batches([[samples[0]!], [samples[1]!], [bad], [samples[2]!]])) got.push(b.samples[0]!.index);
    })().catch((e: unknown) => e);
    expect(got).toEqual([0, 1]);
    expect((err as Error).message).toContain('/nonexistent/y.jpg');

    let started = 0;
    const orig = loader.loadBatch.bind(loader);
    loader.loadBatch = (s, o) => {
      started++;
      return orig(s, o);
    };
    const many = Array.from({ length: 20 }, () => [samples[3]!]);
    for await (const b of loader.batches(many)) {
      expect(b.shape[0]).toBe(1);
      break;
    }
    expect(started).toBeLessThanOrEqual(2);
  });
});
