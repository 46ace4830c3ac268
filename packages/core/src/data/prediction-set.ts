import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DptrainError } from '../errors.js';
import { readTestList } from './competition.js';
import { IMAGE_EXTENSIONS, listImageFiles, readImageFolder } from './folders.js';
import type { Dataset } from './types.js';

export interface PredictionSetOptions {
  /** Class names of the model that will predict (recorded in the Dataset; no labels are read). Default: none. */
  classNames?: readonly string[];
  /** Unlabelled CSV (image_name). Default 'test.csv'. */
  testCsv?: string;
  /** Image folder of the CSV layout, relative to the data directory. Default 'SceneImages' (or the directory itself when there is none). */
  imagesDir?: string;
}

/**
 * What `dptrain predict --data DIR` predicts (the samples are in `test`); training labels are never read:
 *  1. `DIR/test.csv` (image_name) with its images in `DIR/SceneImages/` (or beside the CSV when there is no such
 *     folder): the Kaggle test download; layout 'competition' (the submission's labels are class indices);
 *  2. else every image file directly in DIR; layout 'folders' (labels are class names);
 *  3. else, when DIR has no train.csv, every image file in `DIR/SceneImages/` (a test download without its CSV).
 * Throws E_DATA_LAYOUT naming what was looked for when none applies.
 */
export function loadPredictionSet(dir: string, options: PredictionSetOptions = {}): Dataset {
  const root = resolve(dir);
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    throw new DptrainError('E_DATA_LAYOUT', `data directory ${root} does not exist or is not a directory`);
  }
  const testCsv = options.testCsv ?? 'test.csv';
  const imagesDir = options.imagesDir ?? 'SceneImages';
  const classes = options.classNames ? { classNames: options.classNames } : {};
  if (existsSync(join(root, testCsv))) {
    return readTestList(root, { ...classes, testCsv, ...(options.imagesDir !== undefined ? { imagesDir } : {}) });
  }
  if (listImageFiles(root).length > 0) return readImageFolder(root, classes);
  const imagesRoot = join(root, imagesDir);
  const hasTrain = existsSync(join(root, 'train.csv'));
  const imagesInFolder = isDirectory(imagesRoot) ? listImageFiles(imagesRoot).length : 0;
  if (!hasTrain && imagesInFolder > 0) return readImageFolder(imagesRoot, classes);

  const found: string[] = [];
  if (hasTrain) {
    found.push(
      `it has train.csv${imagesInFolder > 0 ? ` and ${imagesInFolder} images in ${imagesDir}/` : ''}, but predict reads only the unlabelled list ${testCsv}, never the training labels`,
    );
  }
  const folders = subFolders(root).filter((f) => f !== imagesDir || imagesInFolder === 0);
  if (folders.length > 0) {
    const shown = folders.length > 8 ? [...folders.slice(0, 8), '…'] : folders;
    found.push(`sub-folders ${shown.join(', ')} are not searched (give one of them as --data)`);
  }
  throw new DptrainError(
    'E_DATA_LAYOUT',
    `${root}: nothing to predict: looked for ${testCsv} (column image_name, images in ${imagesDir}/), for image files ` +
      `(${IMAGE_EXTENSIONS.join(', ')}) directly in the folder and in ${imagesDir}/, and found none` +
      (found.length > 0 ? `; ${found.join('; ')}` : ''),
  );
}

function isDirectory(p: string): boolean {
  return existsSync(p) && statSync(p).isDirectory();
}

function subFolders(root: string): string[] {
  return readdirSync(root, { withFileTypes: true })
    .filter((d) => !d.name.startsWith('.') && (d.isDirectory() || (d.isSymbolicLink() && isDirectory(join(root, d.name)))))
    .map((d) => d.name)
    .sort();
}
