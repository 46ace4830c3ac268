import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, openSync, closeSync, ftruncateSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDptrainError } from '../errors.js';
import { loadDataset } from './load.js';
import { validateDataset } from './validate.js';
import { ImageBatchLoader } from './loader.js';
import { datasetContentHash, joinDatasetIdentity } from './content-hash.js';
import { readImageFile } from './image-file.js';
import { makeCompetitionDir, writeJpeg } from './image-files.testutil.js';
import type { Culprit } from './types.js';

const TRAIN = 'image_name,label\na.jpg,0\nb.jpg,1\nc.jpg,0\nd.jpg,1\n';
const IMAGES = ['a.jpg', 'b.jpg', 'c.jpg', 'd.jpg'];

async function culpritsOf(dir: string, options: Parameters<typeof validateDataset>[1] = {}): Promise<Culprit[]> {
  const e = await validateDataset(loadDataset(dir), options).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(isDptrainError(e, 'E_DATA_INVALID'), String(e)).toBe(true);
  return (e as { details: Culprit[] }).details;
}

/** Fails the test if `p` has not settled within `ms` (a hang shows as a failure, not a stuck run). */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`still pending after ${ms} ms`)), ms).unref())]);
}

describe('data reading hardening', () => {
  it('refuses a symlink that escapes SceneImages/ (validation and the loader), and accepts one that stays inside', async () => {
    const dir = await makeCompetitionDir(TRAIN, undefined, ['a.jpg', 'c.jpg', 'd.jpg']);
    const outside = mkdtempSync(join(tmpdir(), 'dpt-outside-'));
    await writeJpeg(join(outside, 'secret.jpg'));
    symlinkSync(join(outside, 'secret.jpg'), join(dir, 'SceneImages', 'b.jpg'));
    const culprits = await culpritsOf(dir);
    expect(culprits).toHaveLength(1);
    expect(culprits[0]).toMatchObject({ reason: 'outside_root', line: 3 });
    expect(culprits[0]?.message).toMatch(/outside the image folder/);
    const ds = loadDataset(dir);
    const loader = new ImageBatchLoader({ inputSize: [4, 4], preprocess: 'unit', ...(ds.imagesRoot ? { imagesRoot: ds.imagesRoot } : {}) });
    const e = await loader.loadBatch(ds.labelled.slice(1, 2)).catch((err: unknown) => err);
    expect(isDptrainError(e, 'E_DATA_IMAGE')).toBe(true);
    // a link inside the folder is fine
    const ok = await makeCompetitionDir(TRAIN, undefined, ['a.jpg', 'c.jpg', 'd.jpg']);
    symlinkSync('a.jpg', join(ok, 'SceneImages', 'b.jpg'));
    expect((await validateDataset(loadDataset(ok))).checked).toBe(4);
  });

  it('refuses a FIFO instead of hanging (validation, the loader, the content hash)', async () => {
    const dir = await makeCompetitionDir(TRAIN, undefined, ['a.jpg', 'c.jpg', 'd.jpg']);
    execFileSync('mkfifo', [join(dir, 'SceneImages', 'b.jpg')]);
    const culprits = await within(culpritsOf(dir), 10_000);
    expect(culprits).toHaveLength(1);
    expect(culprits[0]).toMatchObject({ reason: 'not_image', message: 'is a FIFO, not a regular image file' });
    const ds = loadDataset(dir);
    const loader = new ImageBatchLoader({ inputSize: [4, 4], preprocess: 'unit' });
    const e = await within(
      loader.loadBatch(ds.labelled.slice(1, 2)).catch((err: unknown) => err),
      10_000,
    );
    expect(isDptrainError(e, 'E_DATA_IMAGE')).toBe(true);
    expect((e as Error).message).toMatch(/FIFO/);
    expect(typeof (await within(datasetContentHash(ds, { mode: 'full' }), 10_000))).toBe('string');
  });

  it('refuses a file above the size limit before reading it (a 700 MB sparse file)', async () => {
    const dir = await makeCompetitionDir(TRAIN, undefined, ['a.jpg', 'c.jpg', 'd.jpg']);
    const big = join(dir, 'SceneImages', 'b.jpg');
    copyFileSync(join(dir, 'SceneImages', 'a.jpg'), big);
    const fd = openSync(big, 'r+');
    ftruncateSync(fd, 700 * 1024 * 1024); // sparse: takes no disk space
    closeSync(fd);
    const before = process.memoryUsage().rss;
    const culprits = await culpritsOf(dir);
    expect(process.memoryUsage().rss - before).toBeLessThan(200 * 1024 * 1024);
    expect(culprits).toHaveLength(1);
    expect(culprits[0]).toMatchObject({ reason: 'too_large' });
    expect(culprits[0]?.message).toMatch(/734003200 bytes, larger than the limit of 67108864 bytes/);
    // the limit is an option
    const small = await culpritsOf(await makeCompetitionDir(TRAIN, undefined, IMAGES), { maxImageBytes: 100 });
    expect(small.map((c) => c.reason)).toEqual(['too_large', 'too_large', 'too_large', 'too_large']);
    await expect(readImageFile(big, { maxBytes: 1000 })).rejects.toThrow(/larger than the limit of 1000 bytes/);
  });

  it('truncates a 100k-character image name in messages', async () => {
    const long = 'x'.repeat(100_000) + '.jpg';
    const dir = await makeCompetitionDir(`image_name,label\na.jpg,0\n${long},1\n${long},1\n../${long},0\n`, undefined, ['a.jpg']);
    const e = await validateDataset(loadDataset(dir)).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(isDptrainError(e, 'E_DATA_INVALID')).toBe(true);
    const message = (e as Error).message;
    expect(message).toMatch(/missing: file name too long/);
    expect(message).toMatch(/more characters/);
    expect(message.length).toBeLessThan(2_000);
    for (const c of (e as { details: Culprit[] }).details) expect(c.message.length).toBeLessThan(600);
  });

  it('accepts labels written as class names with classNames, and says how when without', async () => {
    const dir = await makeCompetitionDir('image_name,label\na.jpg,street\nb.jpg,0\nc.jpg,forest\nd.jpg,nowhere\n', undefined, IMAGES);
    const ds = loadDataset(dir, { classNames: ['forest', 'street'] });
    expect(ds.labelled.map((s) => [s.name, s.label])).toEqual([
      ['a.jpg', 1],
      ['b.jpg', 0],
      ['c.jpg', 0],
    ]);
    expect(ds.readCulprits).toHaveLength(1);
    expect(ds.readCulprits?.[0]).toMatchObject({ reason: 'bad_label', line: 5 });
    expect(ds.readCulprits?.[0]?.message).toMatch(/nor one of the class names/);
    const without = loadDataset(dir);
    expect(without.readCulprits?.find((c) => c.line === 2)?.message).toMatch(/--class-names/);
  });

  describe('content hash', () => {
    it('changes when the images are replaced though names and labels match; validation computes the same value', async () => {
      const a = await makeCompetitionDir(TRAIN, 'image_name\ne.jpg\n', [...IMAGES, 'e.jpg']);
      const b = await makeCompetitionDir(TRAIN, 'image_name\ne.jpg\n', [...IMAGES, 'e.jpg']);
      for (const name of [...IMAGES, 'e.jpg']) await writeJpeg(join(b, 'SceneImages', name), 16, 12, [200, 10, 10]);
      const da = loadDataset(a);
      const db = loadDataset(b);
      expect(da.hash).toBe(db.hash);
      for (const mode of ['sampled', 'full'] as const) {
        const ha = await datasetContentHash(da, { mode });
        expect(await datasetContentHash(db, { mode })).not.toBe(ha);
        // the same bytes in another directory agree
        const copy = await makeCompetitionDir(TRAIN, 'image_name\ne.jpg\n', []);
        for (const name of [...IMAGES, 'e.jpg']) copyFileSync(join(a, 'SceneImages', name), join(copy, 'SceneImages', name));
        expect(await datasetContentHash(loadDataset(copy), { mode })).toBe(ha);
        expect((await validateDataset(da, { contentHash: mode })).contentHash).toBe(ha);
      }
      // sampled hashes a fixed subset: replacing a file outside it does not change it, replacing one inside does
      const h2 = await datasetContentHash(da, { mode: 'sampled', sampleSize: 2 });
      expect((await validateDataset(da, { contentHash: 'sampled', contentSampleSize: 2 })).contentHash).toBe(h2);
      const settings = { contentHash: 'none', contentSampleSize: 64, maxImageBytes: 1 << 26 } as const;
      expect(await joinDatasetIdentity(da, settings)).toBe(da.hash);
      expect(await joinDatasetIdentity(da, { ...settings, contentHash: 'sampled' })).not.toBe(
        await joinDatasetIdentity(db, { ...settings, contentHash: 'sampled' }),
      );
      writeFileSync(join(a, 'SceneImages', 'zzz-unlisted.jpg'), 'not listed, not hashed');
      expect(await datasetContentHash(da, { mode: 'full' })).toBe(await datasetContentHash(da, { mode: 'full' }));
    });
  });
});

describe('folder layout', () => {
  it('follows symlinked class folders (no containment there)', async () => {
    const root = mkdtempSync(join(tmpdir(), 'dpt-folders-'));
    const elsewhere = mkdtempSync(join(tmpdir(), 'dpt-elsewhere-'));
    for (const cls of ['cats', 'dogs']) {
      const real = join(elsewhere, cls);
      mkdirSync(real);
      await writeJpeg(join(real, '1.jpg'));
      symlinkSync(real, join(root, cls));
    }
    const ds = loadDataset(root);
    expect(ds.imagesRoot).toBeUndefined();
    expect((await validateDataset(ds)).checked).toBe(2);
  });
});
