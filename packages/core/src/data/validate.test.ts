import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDataset } from './load.js';
import { validateDataset } from './validate.js';
import { makeCompetitionDir, writeJpeg } from './image-files.testutil.js';
import { DptrainError, isDptrainError } from '../errors.js';
import type { Culprit } from './types.js';

async function badDir(): Promise<string> {
  const train = [
    'image_name,label',
    'ok1.jpg,0', // 2
    'missing.jpg,1', // 3 missing file
    'trunc.jpg,0', // 4 corrupt JPEG (truncated)
    'text.jpg,1', // 5 not an image
    'ok2.jpg,one', // 6 label not an integer
    'ok3.jpg,-2', // 7 label out of range
    'ok4.jpg,1,2', // 8 malformed row
    'ok1.jpg,1', // 9 duplicate
    'garbled.jpg,0', // 10 corrupt JPEG (garbled scan data)
    'ok5.jpg,1', // 11
  ].join('\n');
  const dir = await makeCompetitionDir(train, 'image_name\nok6.jpg\nempty.jpg\n', ['ok1.jpg', 'ok2.jpg', 'ok3.jpg', 'ok4.jpg', 'ok5.jpg', 'ok6.jpg']);
  const img = join(dir, 'SceneImages');
  await writeJpeg(join(img, 'big.jpg'), 64, 64);
  const full = readFileSync(join(img, 'big.jpg'));
  writeFileSync(join(img, 'trunc.jpg'), full.subarray(0, Math.floor(full.length / 2)));
  const garbled = Buffer.from(full);
  for (let i = Math.floor(full.length * 0.4); i < full.length - 2; i += 7) garbled[i] = 0xff;
  writeFileSync(join(img, 'garbled.jpg'), garbled);
  writeFileSync(join(img, 'text.jpg'), 'hello, I am not a JPEG\n');
  writeFileSync(join(img, 'empty.jpg'), '');
  return dir;
}

describe('validateDataset', () => {
  it('finds every culprit and lists each with file and CSV line in one error', async () => {
    const dir = await badDir();
    const ds = loadDataset(dir);
    const progress: [number, number][] = [];
    const err = await validateDataset(ds, { onProgress: (d, t) => progress.push([d, t]), concurrency: 3 }).catch((e: unknown) => e);
    expect(isDptrainError(err, 'E_DATA_INVALID')).toBe(true);
    const e = err as DptrainError;
    const culprits = e.details as Culprit[];
    const got = culprits.map((c) => [c.file.split('/').pop(), c.line, c.reason]).sort((a, b) => String(a).localeCompare(String(b)));
    expect(got).toEqual(
      [
        ['train.csv', 6, 'bad_label'],
        ['train.csv', 7, 'label_out_of_range'],
        ['train.csv', 8, 'malformed_row'],
        ['train.csv', 9, 'duplicate'],
        ['missing.jpg', 3, 'missing'],
        ['trunc.jpg', 4, 'corrupt'],
        ['text.jpg', 5, 'not_image'],
        ['garbled.jpg', 10, 'corrupt'],
        ['empty.jpg', 3, 'not_image'],
      ].sort((a, b) => String(a).localeCompare(String(b))),
    );
    for (const needle of [
      'train.csv line 6',
      'train.csv line 7',
      'train.csv line 8',
      'train.csv line 9',
      'SceneImages/missing.jpg (CSV line 3): missing',
      'SceneImages/trunc.jpg (CSV line 4): corrupt',
      'SceneImages/text.jpg (CSV line 5): not_image',
      'SceneImages/garbled.jpg (CSV line 10): corrupt',
      'SceneImages/empty.jpg (CSV line 3): not_image',
      '9 problems',
      '--skip-bad',
    ]) {
      expect(e.message).toContain(needle);
    }
    // one progress call per image file checked (labelled rows that survived the CSV read + test rows)
    const total = ds.labelled.length + ds.test.length;
    expect(progress.length).toBe(total);
    expect(progress.at(-1)).toEqual([total, total]);
  });

  it('skipBad returns the cleaned data set and what was dropped', async () => {
    const dir = await badDir();
    const ds = loadDataset(dir);
    const res = await validateDataset(ds, { skipBad: true });
    expect(res.dropped).toHaveLength(9);
    expect(res.dataset.labelled.map((s) => [s.name, s.index])).toEqual([
      ['ok1.jpg', 0],
      ['ok5.jpg', 1],
    ]);
    expect(res.dataset.test.map((s) => s.name)).toEqual(['ok6.jpg']);
    expect(res.dataset.hash).not.toBe(ds.hash);
    expect(res.dataset.readCulprits).toEqual([]);
    // a second pass over the cleaned set is clean
    const again = await validateDataset(res.dataset);
    expect(again.dropped).toEqual([]);
    expect(again.dataset).toBe(res.dataset);
  });

  it('a clean data set passes and is returned unchanged', async () => {
    const dir = await makeCompetitionDir('image_name,label\na.jpg,0\nb.jpg,1\n', 'image_name\nc.jpg\n', ['a.jpg', 'b.jpg', 'c.jpg']);
    const ds = loadDataset(dir);
    const res = await validateDataset(ds);
    expect(res.dataset).toBe(ds);
    expect(res.checked).toBe(3);
  });

  it('folder layout: culprits are named by file (no CSV line) and can be skipped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dp-vf-'));
    mkdirSync(join(dir, 'a'));
    mkdirSync(join(dir, 'b'));
    await writeJpeg(join(dir, 'a', '1.jpg'));
    await writeJpeg(join(dir, 'b', '2.jpg'));
    writeFileSync(join(dir, 'b', '3.jpg'), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]));
    const ds = loadDataset(dir);
    const err = await validateDataset(ds).catch((e: unknown) => e);
    expect(isDptrainError(err, 'E_DATA_INVALID')).toBe(true);
    expect((err as Error).message).toContain('b/3.jpg: corrupt');
    const res = await validateDataset(ds, { skipBad: true });
    expect(res.dataset.labelled.map((s) => s.name)).toEqual(['a/1.jpg', 'b/2.jpg']);
    expect(res.dropped.map((c) => [c.reason, c.line])).toEqual([['corrupt', undefined]]);
  });
});
