import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSyntheticScenes, SYNTHETIC_CLASS_NAMES, syntheticSceneSvg } from './synthetic.js';
import { loadDataset } from './load.js';
import { validateDataset } from './validate.js';
import { ImageBatchLoader } from './loader.js';

describe('generateSyntheticScenes', () => {
  it('writes a valid competition-layout data set, deterministic by seed', async () => {
    const a = mkdtempSync(join(tmpdir(), 'dp-syn-a-'));
    const b = mkdtempSync(join(tmpdir(), 'dp-syn-b-'));
    const c = mkdtempSync(join(tmpdir(), 'dp-syn-c-'));
    const opts = { seed: 3, perClass: 3, testPerClass: 1, size: 48 };
    const ra = await generateSyntheticScenes(a, opts);
    const rb = await generateSyntheticScenes(b, opts);
    const rc = await generateSyntheticScenes(c, { ...opts, seed: 4 });
    expect(ra.train).toBe(18);
    expect(ra.test).toBe(6);
    expect(ra.hash).toBe(rb.hash);
    expect(rc.hash).not.toBe(ra.hash);
    expect(readFileSync(join(a, 'train.csv'), 'utf8')).toBe(readFileSync(join(b, 'train.csv'), 'utf8'));
    const ds = loadDataset(a, { classNames: SYNTHETIC_CLASS_NAMES });
    expect(ds.labelled).toHaveLength(18);
    expect(ds.test).toHaveLength(6);
    for (const s of ds.labelled) expect(readFileSync(s.path)).toEqual(readFileSync(join(b, 'SceneImages', s.name)));
    // every class present, labels of the test split in test_labels.csv
    expect(new Set(ds.labelled.map((s) => s.label)).size).toBe(6);
    const testLabels = readFileSync(join(a, 'test_labels.csv'), 'utf8').trim().split('\n').slice(1);
    expect(testLabels.map((l) => l.split(',')[0])).toEqual(ds.test.map((s) => s.name));
    expect(new Set(testLabels.map((l) => l.split(',')[1])).size).toBe(6);
    // images decode at the requested size
    const res = await validateDataset(ds);
    expect(res.dropped).toEqual([]);
    const loader = new ImageBatchLoader({ inputSize: [48, 48], preprocess: 'unit' });
    const batch = await loader.loadBatch(ds.labelled.slice(0, 6));
    expect(batch.shape).toEqual([6, 48, 48, 3]);
  });

  it('classes differ visually: per-class mean colours are far apart, within-class images vary', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dp-syn-m-'));
    await generateSyntheticScenes(dir, { seed: 1, perClass: 4, testPerClass: 0, size: 32 });
    const ds = loadDataset(dir);
    const loader = new ImageBatchLoader({ inputSize: [32, 32], preprocess: 'unit' });
    const b = await loader.loadBatch(ds.labelled);
    const means: number[][] = SYNTHETIC_CLASS_NAMES.map(() => [0, 0, 0, 0]);
    const per = 32 * 32 * 3;
    const imgMeans: number[] = [];
    ds.labelled.forEach((s, i) => {
      let m = 0;
      for (let k = 0; k < per; k++) {
        means[s.label]![k % 3]! += b.data[i * per + k]! / (per / 3);
        m += b.data[i * per + k]!;
      }
      means[s.label]![3]! += 1;
      imgMeans.push(m / per);
    });
    const avg = means.map((m) => [m[0]! / m[3]!, m[1]! / m[3]!, m[2]! / m[3]!]);
    // forest is the greenest/darkest, glacier the brightest
    const brightness = avg.map((m) => m[0]! + m[1]! + m[2]!);
    expect(brightness.indexOf(Math.max(...brightness))).toBe(2);
    expect(brightness.indexOf(Math.min(...brightness))).toBe(1);
    // no two images are identical
    expect(new Set(imgMeans.map((m) => m.toFixed(6))).size).toBe(imgMeans.length);
    expect(syntheticSceneSvg(0, 1, 0)).not.toBe(syntheticSceneSvg(0, 1, 1));
  });
});
