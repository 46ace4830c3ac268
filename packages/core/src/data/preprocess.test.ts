import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { decodeImage } from './decode.js';
import { CAFFE_MEANS_BGR, preprocessPixels, unpreprocess } from './preprocess.js';
import { isDptrainError } from '../errors.js';

/** A 4x2 (w x h) PNG with known pixels: lossless, so decoded values are exact. */
async function knownPng(dir: string): Promise<{ path: string; raw: Uint8Array }> {
  const raw = new Uint8Array([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 0, 0, 0, 255, 255, 255, 128, 64, 32, 200, 100, 50]);
  const path = join(dir, 'known.png');
  await sharp(Buffer.from(raw), { raw: { width: 4, height: 2, channels: 3 } })
    .png()
    .toFile(path);
  return { path, raw };
}

describe('decode + preprocess', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dp-pre-'));

  it('decodes a known image exactly at its own size', async () => {
    const { path, raw } = await knownPng(dir);
    const img = await decodeImage(path, [2, 4]);
    expect(img.height).toBe(2);
    expect(img.width).toBe(4);
    expect(Array.from(img.data)).toEqual(Array.from(raw));
  });

  it('caffe: RGB→BGR and ImageNet means subtracted, no scaling', async () => {
    const { path } = await knownPng(dir);
    const img = await decodeImage(path, [2, 4]);
    const out = preprocessPixels(img.data, 'caffe');
    // pixel 0 is pure red (255,0,0): BGR = (0,0,255) minus means
    expect(out[0]).toBeCloseTo(0 - 103.939, 4);
    expect(out[1]).toBeCloseTo(0 - 116.779, 4);
    expect(out[2]).toBeCloseTo(255 - 123.68, 4);
    // pixel 3 is (10,20,30): BGR = (30,20,10)
    expect(out[9]).toBeCloseTo(30 - CAFFE_MEANS_BGR[0], 4);
    expect(out[10]).toBeCloseTo(20 - CAFFE_MEANS_BGR[1], 4);
    expect(out[11]).toBeCloseTo(10 - CAFFE_MEANS_BGR[2], 4);
    expect(Array.from(unpreprocess(out, 'caffe')).map((v) => Math.round(v) + 0)).toEqual(Array.from(img.data));
  });

  it('tf maps to [-1,1] and unit to [0,1]', async () => {
    const { path } = await knownPng(dir);
    const img = await decodeImage(path, [2, 4]);
    const tf = preprocessPixels(img.data, 'tf');
    const unit = preprocessPixels(img.data, 'unit');
    expect(tf[0]).toBeCloseTo(1, 6);
    expect(tf[1]).toBeCloseTo(-1, 6);
    expect(tf[18]).toBeCloseTo(128 / 127.5 - 1, 6);
    expect(unit[0]).toBeCloseTo(1, 6);
    expect(unit[1]).toBe(0);
    expect(unit[19]).toBeCloseTo(64 / 255, 6);
    for (const v of tf) expect(Math.abs(v)).toBeLessThanOrEqual(1);
  });

  it('resizes to the requested [h, w], RGB from grey and RGBA inputs', async () => {
    const grey = join(dir, 'grey.png');
    await sharp(Buffer.alloc(30 * 20, 77), { raw: { width: 30, height: 20, channels: 1 } })
      .png()
      .toFile(grey);
    const img = await decodeImage(grey, [7, 11]);
    expect(img.data.length).toBe(7 * 11 * 3);
    expect(img.data.every((v) => v === 77)).toBe(true);
    const rgba = join(dir, 'rgba.png');
    await sharp({ create: { width: 9, height: 5, channels: 4, background: { r: 10, g: 200, b: 30, alpha: 1 } } })
      .png()
      .toFile(rgba);
    const img2 = await decodeImage(rgba, [5, 9]);
    expect(Array.from(img2.data.slice(0, 3))).toEqual([10, 200, 30]);
    expect(img2.data.length).toBe(5 * 9 * 3);
  });

  it('names the file when it cannot decode', async () => {
    const bad = join(dir, 'bad.jpg');
    writeFileSync(bad, 'not an image');
    const err = await decodeImage(bad, [4, 4]).catch((e: unknown) => e);
    expect(isDptrainError(err, 'E_DATA_IMAGE')).toBe(true);
    expect((err as Error).message).toContain('bad.jpg');
  });
});
