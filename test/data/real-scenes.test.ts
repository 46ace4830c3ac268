import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import sharp from 'sharp';
import { ImageBatchLoader, loadDataset, stratifiedSplit, validateDataset, type Dataset } from '@dptrain/core';

/** The real Intel scene photos (../shared/data/scenes from the repo root; DPTRAIN_SCENES overrides). */
const SCENES = resolve(process.env.DPTRAIN_SCENES ?? resolve(__dirname, '../../../shared/data/scenes'));

describe.skipIf(!existsSync(SCENES))('real scene data (../shared/data/scenes)', () => {
  it('reads the competition layout: 3600 labelled in 6 balanced classes, 600 test, no CSV problems', () => {
    const ds = loadDataset(SCENES);
    expect(ds.layout).toBe('competition');
    expect(ds.classNames).toHaveLength(6);
    expect(ds.labelled).toHaveLength(3600);
    expect(ds.test).toHaveLength(600);
    expect(ds.readCulprits).toEqual([]);
    const counts = [0, 0, 0, 0, 0, 0];
    for (const s of ds.labelled) counts[s.label]!++;
    expect(counts).toEqual([600, 600, 600, 600, 600, 600]);
    expect(loadDataset(SCENES).hash).toBe(ds.hash);
    const { validation } = stratifiedSplit(ds.labelled, { seed: 42 });
    expect(validation).toHaveLength(720);
  });

  it('validates the first 50 rows and 10 test images', async () => {
    const ds = loadDataset(SCENES);
    const subset: Dataset = { ...ds, labelled: ds.labelled.slice(0, 50), test: ds.test.slice(0, 10) };
    let last = 0;
    const res = await validateDataset(subset, { onProgress: (d) => (last = d) });
    expect(res.dropped).toEqual([]);
    expect(res.checked).toBe(60);
    expect(last).toBe(60);
  });

  it('decodes photos to 150x150 (caffe) and 224x224 (unit), shorter photos included', async () => {
    const ds = loadDataset(SCENES);
    // find one of the few photos that are shorter than 150
    let short = undefined as (typeof ds.labelled)[number] | undefined;
    for (const s of ds.labelled.slice(0, 400)) {
      const m = await sharp(s.path).metadata();
      if ((m.height ?? 150) < 150) {
        short = s;
        break;
      }
    }
    expect(short, 'the data set README says a few photos are shorter than 150').toBeDefined();
    const samples = [...ds.labelled.slice(0, 3), short!];
    const caffe = await new ImageBatchLoader({ inputSize: [150, 150], preprocess: 'caffe' }).loadBatch(samples);
    expect(caffe.shape).toEqual([samples.length, 150, 150, 3]);
    expect(Array.from(caffe.labels)).toEqual(samples.map((s) => s.label));
    let min = Infinity;
    let max = -Infinity;
    for (const v of caffe.data) {
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    expect(min).toBeGreaterThanOrEqual(-123.68 - 1e-3);
    expect(max).toBeLessThanOrEqual(255 - 103.939 + 1e-3);
    expect(max - min).toBeGreaterThan(100); // a photo, not a flat image
    const unit = await new ImageBatchLoader({ inputSize: [224, 224], preprocess: 'unit' }).loadBatch(samples);
    expect(unit.shape).toEqual([samples.length, 224, 224, 3]);
    expect(unit.data.length).toBe(samples.length * 224 * 224 * 3);
    for (const v of unit.data) if (v < 0 || v > 1) throw new Error(`unit value ${v} out of [0,1]`);
    // caffe at 150 and unit at 224 agree on the mean colour of the first photo (BGR vs RGB taken into account)
    const n150 = 150 * 150;
    const n224 = 224 * 224;
    let rCaffe = 0;
    let rUnit = 0;
    for (let i = 0; i < n150; i++) rCaffe += caffe.data[i * 3 + 2]! + 123.68;
    for (let i = 0; i < n224; i++) rUnit += unit.data[i * 3]! * 255;
    expect(Math.abs(rCaffe / n150 - rUnit / n224)).toBeLessThan(2);
  });
});
