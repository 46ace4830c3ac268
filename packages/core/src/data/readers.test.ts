import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDataset } from './load.js';
import { makeCompetitionDir, writeJpeg } from './image-files.testutil.js';
import { isDptrainError } from '../errors.js';

describe('competition layout reader', () => {
  it('reads train.csv and test.csv with lines, paths and classes 0..max', async () => {
    const dir = await makeCompetitionDir('image_name,label\na.jpg,0\nb.jpg,2\n\nc.jpg,1\n', 'image_name\nd.jpg\ne.jpg\n', [
      'a.jpg',
      'b.jpg',
      'c.jpg',
      'd.jpg',
      'e.jpg',
    ]);
    const ds = loadDataset(dir);
    expect(ds.layout).toBe('competition');
    expect(ds.classNames).toEqual(['0', '1', '2']);
    expect(ds.labelled.map((s) => [s.name, s.label, s.line, s.index])).toEqual([
      ['a.jpg', 0, 2, 0],
      ['b.jpg', 2, 3, 1],
      ['c.jpg', 1, 5, 2],
    ]);
    expect(ds.labelled[0]!.path).toBe(join(dir, 'SceneImages', 'a.jpg'));
    expect(ds.test.map((s) => [s.name, s.label, s.line, s.split])).toEqual([
      ['d.jpg', -1, 2, 'test'],
      ['e.jpg', -1, 3, 'test'],
    ]);
    expect(ds.readCulprits).toEqual([]);
    expect(ds.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('uses given class names; hash depends on names and labels, not on the directory', async () => {
    const csv = 'image_name,label\na.jpg,0\nb.jpg,1\n';
    const d1 = await makeCompetitionDir(csv, undefined, ['a.jpg', 'b.jpg']);
    const d2 = await makeCompetitionDir(csv, undefined, []);
    const d3 = await makeCompetitionDir('image_name,label\na.jpg,1\nb.jpg,1\n', undefined, []);
    const a = loadDataset(d1, { classNames: ['x', 'y', 'z'] });
    expect(a.classNames).toEqual(['x', 'y', 'z']);
    expect(a.test).toEqual([]);
    expect(loadDataset(d1).hash).toBe(loadDataset(d2).hash);
    expect(loadDataset(d1).hash).not.toBe(loadDataset(d3, { classNames: ['0', '1'] }).hash);
  });

  it('collects CSV problems with their lines instead of stopping at the first', async () => {
    const train = [
      'image_name,label',
      'a.jpg,0', // 2 ok
      'b.jpg,zero', // 3 bad_label
      'c.jpg,1.5', // 4 bad_label
      'd.jpg,-1', // 5 out of range
      'e.jpg,1,extra', // 6 malformed
      'f.jpg', // 7 malformed
      ',1', // 8 empty name
      'a.jpg,1', // 9 duplicate
      '"g.jpg,1', // 10 unclosed quote
      'h.jpg,1', // 11 ok
    ].join('\n');
    const dir = await makeCompetitionDir(train, 'image_name\nh.jpg\ni.jpg\n', []);
    const ds = loadDataset(dir);
    expect(ds.labelled.map((s) => s.name)).toEqual(['a.jpg', 'h.jpg']);
    expect(ds.test.map((s) => s.name)).toEqual(['i.jpg']);
    const got = (ds.readCulprits ?? []).map((c) => [c.file.split('/').pop(), c.line, c.reason]);
    expect(got).toEqual([
      ['train.csv', 3, 'bad_label'],
      ['train.csv', 4, 'bad_label'],
      ['train.csv', 5, 'label_out_of_range'],
      ['train.csv', 6, 'malformed_row'],
      ['train.csv', 7, 'malformed_row'],
      ['train.csv', 8, 'malformed_row'],
      ['train.csv', 9, 'duplicate'],
      ['train.csv', 10, 'malformed_row'],
      ['test.csv', 2, 'duplicate'],
    ]);
  });

  it('reports labels above a gap (without class names) or beyond the given classes as out of range', async () => {
    const dir = await makeCompetitionDir('image_name,label\na.jpg,0\nb.jpg,1\nc.jpg,60\n', undefined, []);
    const ds = loadDataset(dir);
    expect(ds.classNames).toEqual(['0', '1']);
    expect(ds.readCulprits?.map((c) => [c.line, c.reason])).toEqual([[4, 'label_out_of_range']]);
    const named = loadDataset(dir, { classNames: ['p', 'q', 'r'] });
    expect(named.readCulprits?.map((c) => [c.line, c.reason])).toEqual([[4, 'label_out_of_range']]);
    expect(named.readCulprits?.[0]?.message).toContain('0..2');
  });

  it('fails clearly on a missing header column or a directory of no known layout', async () => {
    const dir = await makeCompetitionDir('name,cls\na.jpg,0\n', undefined, []);
    const e1 = (() => {
      try {
        loadDataset(dir);
      } catch (e) {
        return e;
      }
    })();
    expect(isDptrainError(e1, 'E_DATA_CSV')).toBe(true);
    expect((e1 as Error).message).toContain('train.csv line 1');
    const empty = mkdtempSync(join(tmpdir(), 'dp-empty-'));
    expect(() => loadDataset(empty)).toThrow(/no class folders/);
    expect(() => loadDataset(join(empty, 'nope'))).toThrow(/does not exist/);
  });
});

describe('folder-per-class reader', () => {
  it('reads sorted class folders, ignores hidden and non-image files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dp-folders-'));
    for (const c of ['sea', 'forest', '.hidden']) mkdirSync(join(dir, c));
    await writeJpeg(join(dir, 'sea', 'b.jpg'));
    await writeJpeg(join(dir, 'sea', 'a.JPG'));
    await writeJpeg(join(dir, 'forest', 'z.jpeg'));
    writeFileSync(join(dir, 'forest', 'notes.txt'), 'x');
    writeFileSync(join(dir, 'forest', '.DS_Store'), 'x');
    const ds = loadDataset(dir);
    expect(ds.layout).toBe('folders');
    expect(ds.classNames).toEqual(['forest', 'sea']);
    expect(ds.labelled.map((s) => [s.name, s.label, s.index])).toEqual([
      ['forest/z.jpeg', 0, 0],
      ['sea/a.JPG', 1, 1],
      ['sea/b.jpg', 1, 2],
    ]);
    expect(ds.labelled[0]!.line).toBeUndefined();
    const named = loadDataset(dir, { classNames: ['sea', 'forest'] });
    expect(named.labelled.map((s) => [s.name, s.label])).toEqual([
      ['sea/a.JPG', 0],
      ['sea/b.jpg', 0],
      ['forest/z.jpeg', 1],
    ]);
    expect(() => loadDataset(dir, { classNames: ['sea', 'glacier'] })).toThrow(/no folder for class glacier.*forest is not a given class/);
  });

  it('accepts CRLF line endings, a BOM and quoted fields', async () => {
    const dir = await makeCompetitionDir('\uFEFFimage_name,label\r\n"a.jpg",0\r\n"b,c.jpg", 1 \r\n', undefined, []);
    const ds = loadDataset(dir);
    expect(ds.labelled.map((s) => [s.name, s.label, s.line])).toEqual([
      ['a.jpg', 0, 2],
      ['b,c.jpg', 1, 3],
    ]);
    expect(ds.readCulprits).toEqual([]);
  });
});
