import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { DptrainError } from '../errors.js';
import { clipForMessage } from './clip.js';
import { parseCsvLines } from './csv.js';
import { datasetHash } from './hash.js';
import type { Culprit, Dataset, Sample } from './types.js';

export interface CompetitionReadOptions {
  /**
   * Class names, index = label; also fixes the number of classes. With them, a label may also be written as
   * its class name (e.g. `street` instead of `5`). Default: '0'..'max label' from train.csv.
   */
  classNames?: readonly string[];
  /** Folder of the images, relative to the data directory. Default 'SceneImages'. */
  imagesDir?: string;
  /** Labelled CSV (image_name,label). Default 'train.csv'. */
  trainCsv?: string;
  /** Unlabelled CSV (image_name). Default 'test.csv'; optional file. */
  testCsv?: string;
}

const INTEGER = /^[+-]?\d+$/;

/**
 * Reads the competition layout: `train.csv` (image_name,label), optional `test.csv` (image_name), images in
 * `SceneImages/`. Bad rows (wrong column count, empty name, label that is not an integer or out of range,
 * duplicated name, name escaping the image folder) are left out and collected in `readCulprits`; files are not
 * opened here (see validateDataset). Without class names, classes are 0..max label; labels must then be
 * contiguous from 0: labels above the first unused class number are reported as out of range (pass class names
 * to declare classes that have no training rows).
 * Throws E_DATA_LAYOUT when train.csv is missing and E_DATA_CSV when a header lacks a needed column.
 */
export function readCompetition(dir: string, options: CompetitionReadOptions = {}): Dataset {
  const root = resolve(dir);
  const imagesRoot = join(root, options.imagesDir ?? 'SceneImages');
  const trainPath = join(root, options.trainCsv ?? 'train.csv');
  const testPath = join(root, options.testCsv ?? 'test.csv');
  if (!existsSync(trainPath)) {
    throw new DptrainError('E_DATA_LAYOUT', `${trainPath} not found: ${root} is not in the competition layout`);
  }
  const culprits: Culprit[] = [];
  const imagePath = imagePathResolver(imagesRoot, culprits);
  const checkDuplicate = duplicateChecker(culprits);

  // train.csv
  const train = parseCsvLines(readFileSync(trainPath, 'utf8'), trainPath);
  culprits.push(...train.culprits);
  const nameCol = train.header.indexOf('image_name');
  const labelCol = train.header.indexOf('label');
  if (nameCol < 0 || labelCol < 0) {
    throw new DptrainError(
      'E_DATA_CSV',
      `${trainPath} line ${train.headerLine || 1}: header must name the columns image_name and label (got "${train.header.join(',')}")`,
    );
  }
  const rawLabelled: { name: string; label: number; line: number; path: string }[] = [];
  for (const row of train.rows) {
    const { line, fields } = row;
    if (fields.length !== train.header.length) {
      culprits.push({
        file: trainPath,
        line,
        reason: 'malformed_row',
        message: `expected ${train.header.length} columns (${train.header.join(',')}), got ${fields.length}`,
      });
      continue;
    }
    const name = fields[nameCol] ?? '';
    const labelText = fields[labelCol] ?? '';
    if (name === '') {
      culprits.push({ file: trainPath, line, reason: 'malformed_row', message: 'empty image_name' });
      continue;
    }
    const shownName = clipForMessage(name);
    const byName = options.classNames && !INTEGER.test(labelText) ? options.classNames.indexOf(labelText) : -1;
    if (byName < 0 && !INTEGER.test(labelText)) {
      const hint = options.classNames ? ' nor one of the class names' : ' (pass --class-names to write labels as class names)';
      culprits.push({
        file: trainPath,
        line,
        reason: 'bad_label',
        message: `label "${clipForMessage(labelText, 60)}" of ${shownName} is not an integer${hint}`,
      });
      continue;
    }
    const label = byName >= 0 ? byName : Number(labelText);
    if (label < 0 || (options.classNames && label >= options.classNames.length)) {
      const range = options.classNames ? `0..${options.classNames.length - 1}` : '0 or more';
      culprits.push({ file: trainPath, line, reason: 'label_out_of_range', message: `label ${label} of ${shownName} is out of range (${range})` });
      continue;
    }
    const path = imagePath(name, trainPath, line);
    if (path === undefined) continue;
    if (checkDuplicate(name, trainPath, line)) continue;
    rawLabelled.push({ name, label, line, path });
  }

  let classNames: string[];
  let kept = rawLabelled;
  if (options.classNames) {
    classNames = [...options.classNames];
  } else {
    const present = new Set(rawLabelled.map((r) => r.label));
    let count = 0;
    while (present.has(count)) count++;
    const max = rawLabelled.reduce((m, r) => Math.max(m, r.label), -1);
    if (max >= count) {
      kept = [];
      for (const r of rawLabelled) {
        if (r.label >= count) {
          culprits.push({
            file: trainPath,
            line: r.line,
            reason: 'label_out_of_range',
            message: `label ${r.label} of ${clipForMessage(r.name)} is out of range: no row has label ${count}, so classes are 0..${count - 1} (give class names to declare more)`,
          });
        } else kept.push(r);
      }
    }
    classNames = Array.from({ length: count }, (_, i) => String(i));
  }
  const labelled: Sample[] = kept.map((r, index) => ({
    split: 'labelled',
    index,
    name: r.name,
    path: r.path,
    label: r.label,
    line: r.line,
  }));

  // test.csv (optional)
  const test = existsSync(testPath) ? readTestCsv(testPath, imagePath, checkDuplicate, culprits) : [];

  culprits.sort((a, b) => (a.file === b.file ? (a.line ?? 0) - (b.line ?? 0) : a.file === trainPath ? -1 : 1));
  return {
    layout: 'competition',
    root,
    classNames,
    labelled,
    test,
    hash: datasetHash(classNames, labelled, test),
    readCulprits: culprits,
    imagesRoot,
  };
}

export interface TestListReadOptions {
  /** Class names of the model that will predict (recorded in the Dataset; no labels are read). Default: none. */
  classNames?: readonly string[];
  /** Folder of the images, relative to the data directory. Default 'SceneImages', or the data directory itself when it has no such folder. */
  imagesDir?: string;
  /** Unlabelled CSV (image_name). Default 'test.csv'. */
  testCsv?: string;
}

/**
 * Reads only the unlabelled half of the competition layout, as Kaggle hands out a test set: `test.csv`
 * (image_name) and the images, no `train.csv` needed (`dptrain predict`). The samples are in `test`, in file order;
 * bad rows are collected in `readCulprits` as readCompetition does. Throws E_DATA_LAYOUT when test.csv is
 * missing and E_DATA_CSV when its header has no image_name column.
 */
export function readTestList(dir: string, options: TestListReadOptions = {}): Dataset {
  const root = resolve(dir);
  const testPath = join(root, options.testCsv ?? 'test.csv');
  if (!existsSync(testPath)) throw new DptrainError('E_DATA_LAYOUT', `${testPath} not found: ${root} has no list of test images`);
  const defaultImages = join(root, 'SceneImages');
  const imagesRoot = options.imagesDir !== undefined ? join(root, options.imagesDir) : existsSync(defaultImages) ? defaultImages : root;
  const culprits: Culprit[] = [];
  const test = readTestCsv(testPath, imagePathResolver(imagesRoot, culprits), duplicateChecker(culprits), culprits);
  const classNames = [...(options.classNames ?? [])];
  return { layout: 'competition', root, classNames, labelled: [], test, hash: datasetHash(classNames, [], test), readCulprits: culprits };
}

/**
 * Reads an unlabelled list (`image_name` column) into test samples, in file order. Bad rows are left out and
 * pushed to `culprits`; `imagePath` resolves a name (undefined: it escapes the image folder, already reported);
 * `isDuplicate` reports a name seen before. Throws E_DATA_CSV when the header has no image_name column.
 */
function readTestCsv(
  testPath: string,
  imagePath: (name: string, file: string, line: number) => string | undefined,
  isDuplicate: (name: string, file: string, line: number) => boolean,
  culprits: Culprit[],
): Sample[] {
  const test: Sample[] = [];
  const t = parseCsvLines(readFileSync(testPath, 'utf8'), testPath);
  culprits.push(...t.culprits);
  const col = t.header.indexOf('image_name');
  if (col < 0) {
    throw new DptrainError('E_DATA_CSV', `${testPath} line ${t.headerLine || 1}: header must name the column image_name (got "${t.header.join(',')}")`);
  }
  for (const { line, fields } of t.rows) {
    if (fields.length !== t.header.length) {
      culprits.push({
        file: testPath,
        line,
        reason: 'malformed_row',
        message: `expected ${t.header.length} columns (${t.header.join(',')}), got ${fields.length}`,
      });
      continue;
    }
    const name = fields[col] ?? '';
    if (name === '') {
      culprits.push({ file: testPath, line, reason: 'malformed_row', message: 'empty image_name' });
      continue;
    }
    const path = imagePath(name, testPath, line);
    if (path === undefined) continue;
    if (isDuplicate(name, testPath, line)) continue;
    test.push({ split: 'test', index: test.length, name, path, label: -1, line });
  }
  return test;
}

/** Resolves an image name inside `imagesRoot`; a name escaping it is reported to `culprits` (undefined). */
function imagePathResolver(imagesRoot: string, culprits: Culprit[]): (name: string, file: string, line: number) => string | undefined {
  return (name, file, line) => {
    const p = resolve(imagesRoot, name);
    const rel = relative(imagesRoot, p);
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) {
      culprits.push({ file, line, reason: 'malformed_row', message: `image name "${clipForMessage(name)}" points outside ${imagesRoot}` });
      return undefined;
    }
    return p;
  };
}

/** True for a name already seen (reported to `culprits` with where it was first listed). */
function duplicateChecker(culprits: Culprit[]): (name: string, file: string, line: number) => boolean {
  const seen = new Map<string, { file: string; line: number }>();
  return (name, file, line) => {
    const first = seen.get(name);
    if (first) {
      const where = first.file === file ? `line ${first.line}` : `${first.file} line ${first.line}`;
      culprits.push({ file, line, reason: 'duplicate', message: `image name "${clipForMessage(name)}" already listed at ${where}` });
      return true;
    }
    seen.set(name, { file, line });
    return false;
  };
}
