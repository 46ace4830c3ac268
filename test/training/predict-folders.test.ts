import { afterAll, describe, expect, it, beforeAll } from 'vitest';
import { execFile } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { tinyRunFlags } from '../helpers/cli.testutil.js';

const run = promisify(execFile);
const root = path.resolve(__dirname, '../..');
const bin = path.join(root, 'packages/cli/bin/dptrain.js');
/** The real Intel scene photos (../shared/data/scenes from the repo root; DPTRAIN_SCENES overrides). */
const SCENES = path.resolve(process.env.DPTRAIN_SCENES ?? path.resolve(root, '../shared/data/scenes'));

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

async function dptrain(args: string[]): Promise<Ran> {
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, ...args], { cwd: root, timeout: 240_000, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

function lastLine(text: string): string {
  return text.trim().split('\n').at(-1) ?? '';
}

function csvRows(file: string): string[][] {
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split(','));
}

/** Real photos: the first rows of train.csv (6 per class) and of test.csv, linked into temp folders. */
function realNames(): { train: string[]; test: string[] } {
  const byClass = new Map<string, string[]>();
  for (const line of readFileSync(path.join(SCENES, 'train.csv'), 'utf8').trim().split('\n').slice(1)) {
    const [name, label] = line.split(',') as [string, string];
    const list = byClass.get(label) ?? [];
    if (list.length < 6) list.push(`${name},${label}`);
    byClass.set(label, list);
  }
  const train = [...byClass.keys()].sort().flatMap((k) => byClass.get(k)!);
  const test = readFileSync(path.join(SCENES, 'test.csv'), 'utf8').trim().split('\n').slice(1, 25);
  return { train, test };
}

/** Copies of the real photos (a symlink out of SceneImages/ is refused by validation, as any image escaping it). */
function link(names: string[], dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const n of names) copyFileSync(path.join(SCENES, 'SceneImages', n), path.join(dir, n));
}

describe.skipIf(!existsSync(SCENES))('dptrain predict on Kaggle-style folders (real CLI processes, real photos)', () => {
  let base = '';
  let trainDir = '';
  let runDir = '';
  let testOnly = '';
  let testNames: string[] = [];

  beforeAll(async () => {
    base = mkdtempSync(path.join(tmpdir(), 'dpt-predict-'));
    const { train, test } = realNames();
    testNames = test;
    // the training half: train.csv + its images only (36 real photos)
    trainDir = path.join(base, 'train-data');
    link(
      train.map((r) => r.split(',')[0]!),
      path.join(trainDir, 'SceneImages'),
    );
    writeFileSync(path.join(trainDir, 'train.csv'), ['image_name,label', ...train].join('\n') + '\n');
    // the test half as Kaggle hands it out: test.csv + SceneImages/, no train.csv
    testOnly = path.join(base, 'test-only');
    link(test, path.join(testOnly, 'SceneImages'));
    writeFileSync(path.join(testOnly, 'test.csv'), ['image_name', ...test].join('\n') + '\n');
    runDir = path.join(base, 'run');
    const trained = await dptrain(['train', ...tinyRunFlags(trainDir, { pooling: 'flatten', backend: 'wasm' }), '--out', runDir, '-q']);
    expect(trained.code, trained.stderr).toBe(0);
    // predict must not need the training labels: they are gone from here on
    renameSync(path.join(trainDir, 'train.csv'), path.join(trainDir, 'train.csv.gone'));
  });

  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it('a test-only folder (test.csv + SceneImages/, no train.csv) gets a submission with every test.csv row, in order', async () => {
    const out = path.join(base, 'test-only.csv');
    const r = await dptrain(['predict', '--model', runDir, '--data', testOnly, '--out', out, '--backend', 'wasm']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`wrote ${out} (24 images)`);
    expect(readFileSync(out, 'utf8').split('\n')[0]).toBe('image_name,label');
    const rows = csvRows(out);
    expect(rows.map((x) => x[0])).toEqual(testNames);
    for (const [, label] of rows) expect(['0', '1', '2', '3', '4', '5']).toContain(label);
  });

  it('a plain folder of images (no CSV) gets a row for every image in it, sorted by name', async () => {
    const plain = path.join(base, 'plain');
    link(testNames.slice(0, 9), plain);
    writeFileSync(path.join(plain, 'README.txt'), 'not an image');
    const out = path.join(base, 'plain.csv');
    const r = await dptrain(['predict', '--model', runDir, '--data', plain, '--out', out, '--backend', 'wasm']);
    expect(r.code, r.stderr).toBe(0);
    const rows = csvRows(out);
    expect(rows.map((x) => x[0])).toEqual([...testNames.slice(0, 9)].sort());
    // the same images predicted from the test-only folder get the same classes
    const fromCsv = new Map(csvRows(path.join(base, 'test-only.csv')).map(([n, l]) => [n, l]));
    for (const [name, label] of rows) expect(label, name).toBe(fromCsv.get(name!));
  });

  it('without model.json (the model rebuilt from the run config) predicts the same, with the training data gone', async () => {
    const copy = path.join(base, 'run-trainable-only');
    cpSync(runDir, copy, { recursive: true });
    rmSync(path.join(copy, 'model', 'model.json'));
    rmSync(path.join(trainDir, 'SceneImages'), { recursive: true }); // only the test folder remains
    const out = path.join(base, 'rebuilt.csv');
    const r = await dptrain(['predict', '--model', copy, '--data', testOnly, '--out', out, '--backend', 'wasm']);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(readFileSync(path.join(base, 'test-only.csv'), 'utf8'));
  });

  it('an unusable folder fails with [E_DATA_LAYOUT] naming what was looked for; a missing image with [E_DATA_INVALID] naming it', async () => {
    const empty = path.join(base, 'empty');
    mkdirSync(empty);
    const r = await dptrain(['predict', '--model', runDir, '--data', empty, '--backend', 'wasm']);
    expect(r.code).toBe(1);
    expect(lastLine(r.stderr)).toMatch(
      /^dptrain: \[E_DATA_LAYOUT\] .*empty: nothing to predict: looked for test\.csv \(column image_name, images in SceneImages\/\), for image files/,
    );
    const broken = path.join(base, 'broken');
    link(testNames.slice(0, 3), path.join(broken, 'SceneImages'));
    writeFileSync(path.join(broken, 'test.csv'), ['image_name', ...testNames.slice(0, 3), 'gone.jpg'].join('\n') + '\n');
    const out = path.join(base, 'broken.csv');
    const bad = await dptrain(['predict', '--model', runDir, '--data', broken, '--out', out, '--backend', 'wasm']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/dptrain: \[E_DATA_INVALID\] data validation found 1 problem[\s\S]*SceneImages\/gone\.jpg \(CSV line 5\): missing/);
    expect(existsSync(out)).toBe(false);
    const skipped = await dptrain(['predict', '--model', runDir, '--data', broken, '--out', out, '--backend', 'wasm', '--skip-bad']);
    expect(skipped.code, skipped.stderr).toBe(0);
    expect(skipped.stderr).toMatch(/--skip-bad: left out 1 bad input/);
    expect(csvRows(out).map((x) => x[0])).toEqual(testNames.slice(0, 3));
  });
});
