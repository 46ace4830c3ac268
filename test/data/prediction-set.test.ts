import { describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadPredictionSet, validateDataset } from '@dptrain/core';

/** The real Intel scene photos (../shared/data/scenes from the repo root; DPTRAIN_SCENES overrides). */
const SCENES = resolve(process.env.DPTRAIN_SCENES ?? resolve(__dirname, '../../../shared/data/scenes'));

/** The first `n` names of the real test.csv (no labels read). */
function realTestNames(n: number): string[] {
  return readFileSync(join(SCENES, 'test.csv'), 'utf8')
    .trim()
    .split('\n')
    .slice(1, n + 1);
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'dpt-predset-'));
}

/** A Kaggle-style test download: test.csv + SceneImages/ (symlinks to the real photos), no train.csv. */
function testOnlyFolder(names: string[]): string {
  const dir = tempDir();
  mkdirSync(join(dir, 'SceneImages'));
  for (const n of names) symlinkSync(join(SCENES, 'SceneImages', n), join(dir, 'SceneImages', n));
  writeFileSync(join(dir, 'test.csv'), ['image_name', ...names].join('\n') + '\n');
  return dir;
}

describe.skipIf(!existsSync(SCENES))('prediction inputs (real photos from ../shared/data/scenes)', () => {
  it('a test-only folder (test.csv + SceneImages/, no train.csv) gives its rows in file order, and every image checks out', async () => {
    const names = realTestNames(24);
    const dir = testOnlyFolder(names);
    const ds = loadPredictionSet(dir, { classNames: ['0', '1', '2', '3', '4', '5'] });
    expect(ds.layout).toBe('competition');
    expect(ds.labelled).toEqual([]);
    expect(ds.test.map((s) => s.name)).toEqual(names);
    expect(ds.test.map((s) => s.index)).toEqual(names.map((_, i) => i));
    expect(ds.test[0]!.path).toBe(join(dir, 'SceneImages', names[0]!));
    expect(ds.test.every((s) => s.label === -1 && s.split === 'test')).toBe(true);
    expect(ds.readCulprits).toEqual([]);
    expect(ds.classNames).toEqual(['0', '1', '2', '3', '4', '5']);
    const checked = await validateDataset(ds);
    expect(checked.dropped).toEqual([]);
    expect(checked.checked).toBe(24);
  });

  it('test.csv with the images beside it (no SceneImages/) reads them from the folder itself', () => {
    const names = realTestNames(5);
    const dir = tempDir();
    for (const n of names) symlinkSync(join(SCENES, 'SceneImages', n), join(dir, n));
    writeFileSync(join(dir, 'test.csv'), ['image_name', ...names].join('\n') + '\n');
    const ds = loadPredictionSet(dir);
    expect(ds.test.map((s) => s.path)).toEqual(names.map((n) => join(dir, n)));
  });

  it('the full real data directory predicts its test.csv only (600 rows), never its 3600 labelled rows', () => {
    const ds = loadPredictionSet(SCENES);
    expect(ds.test).toHaveLength(600);
    expect(ds.labelled).toEqual([]);
  });

  it('a plain folder of images (no CSV) gives every image in it, sorted by name; other files are ignored', () => {
    const names = realTestNames(7);
    const dir = tempDir();
    for (const n of names) copyFileSync(join(SCENES, 'SceneImages', n), join(dir, n));
    writeFileSync(join(dir, 'notes.txt'), 'not an image');
    mkdirSync(join(dir, 'sub'));
    const ds = loadPredictionSet(dir);
    expect(ds.layout).toBe('folders');
    expect(ds.test.map((s) => s.name)).toEqual([...names].sort());
    expect(ds.test.map((s) => s.path)).toEqual([...names].sort().map((n) => join(dir, n)));
  });

  it('a folder holding only SceneImages/ (a test download without its CSV) gives the images in it', () => {
    const names = realTestNames(4);
    const dir = tempDir();
    mkdirSync(join(dir, 'SceneImages'));
    for (const n of names) symlinkSync(join(SCENES, 'SceneImages', n), join(dir, 'SceneImages', n));
    const ds = loadPredictionSet(dir);
    expect(ds.test.map((s) => s.name)).toEqual([...names].sort());
  });

  it('an unusable folder fails with E_DATA_LAYOUT naming what was looked for and what was found', () => {
    const empty = tempDir();
    expect(() => loadPredictionSet(empty)).toThrow(
      expect.objectContaining({
        code: 'E_DATA_LAYOUT',
        message: expect.stringMatching(
          /nothing to predict: looked for test\.csv \(column image_name, images in SceneImages\/\), for image files \(\.jpg, \.jpeg/,
        ),
      }),
    );
    // the training half only: train.csv + SceneImages/ -> predict does not take the training images for a test set
    const trainOnly = tempDir();
    mkdirSync(join(trainOnly, 'SceneImages'));
    for (const n of realTestNames(3)) symlinkSync(join(SCENES, 'SceneImages', n), join(trainOnly, 'SceneImages', n));
    writeFileSync(join(trainOnly, 'train.csv'), 'image_name,label\n');
    expect(() => loadPredictionSet(trainOnly)).toThrow(
      expect.objectContaining({
        code: 'E_DATA_LAYOUT',
        message: expect.stringMatching(/it has train\.csv and 3 images in SceneImages\/, but predict reads only the unlabelled list test\.csv/),
      }),
    );
    // class folders are named, not searched
    const classFolders = tempDir();
    mkdirSync(join(classFolders, 'forest'));
    mkdirSync(join(classFolders, 'sea'));
    expect(() => loadPredictionSet(classFolders)).toThrow(
      expect.objectContaining({ code: 'E_DATA_LAYOUT', message: expect.stringMatching(/sub-folders forest, sea are not searched/) }),
    );
    expect(() => loadPredictionSet(join(empty, 'nope'))).toThrow(
      expect.objectContaining({ code: 'E_DATA_LAYOUT', message: expect.stringMatching(/does not exist/) }),
    );
  });

  it('a test.csv row whose image is missing is named by validation (file and CSV line)', async () => {
    const names = realTestNames(3);
    const dir = testOnlyFolder(names);
    writeFileSync(join(dir, 'test.csv'), ['image_name', ...names, 'gone.jpg'].join('\n') + '\n');
    const ds = loadPredictionSet(dir);
    await expect(validateDataset(ds)).rejects.toThrow(
      expect.objectContaining({ code: 'E_DATA_INVALID', message: expect.stringMatching(/gone\.jpg \(CSV line 5\): missing/) }),
    );
    const { dataset } = await validateDataset(ds, { skipBad: true });
    expect(dataset.test.map((s) => s.name)).toEqual(names);
  });
});
