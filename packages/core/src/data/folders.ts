import { readdirSync, statSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { DptrainError } from '../errors.js';
import { datasetHash } from './hash.js';
import type { Dataset, Sample } from './types.js';

/** File extensions read as images in the folder layout (case-insensitive). Other files are ignored. */
export const IMAGE_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff'];

export interface FolderReadOptions {
  /** Class names, index = label: these folders, in this order. Default: all sub-folders, sorted by name. */
  classNames?: readonly string[];
}

/**
 * Reads the folder-per-class layout `root/<class>/*.jpg`. Hidden entries are skipped; files are sorted by
 * name within each class; sample names are `class/file`. Class folders may be symbolic links (to anywhere), so
 * there is no image-folder containment here (`imagesRoot` is left unset). Throws E_DATA_LAYOUT when there is no class folder or
 * when given class names lack a folder or a folder is not among them.
 */
export function readFolders(dir: string, options: FolderReadOptions = {}): Dataset {
  const root = resolve(dir);
  const folders = readdirSync(root, { withFileTypes: true })
    .filter((d) => !d.name.startsWith('.') && (d.isDirectory() || (d.isSymbolicLink() && statSync(join(root, d.name)).isDirectory())))
    .map((d) => d.name)
    .sort();
  if (folders.length === 0) throw new DptrainError('E_DATA_LAYOUT', `${root} has no class folders (expected root/<class>/*.jpg)`);
  let classNames: string[];
  if (options.classNames) {
    classNames = [...options.classNames];
    const missing = classNames.filter((c) => !folders.includes(c));
    const extra = folders.filter((f) => !classNames.includes(f));
    if (missing.length > 0 || extra.length > 0) {
      const parts = [];
      if (missing.length) parts.push(`no folder for class ${missing.join(', ')}`);
      if (extra.length) parts.push(`folder ${extra.join(', ')} is not a given class`);
      throw new DptrainError('E_DATA_LAYOUT', `${root}: ${parts.join('; ')}`);
    }
  } else {
    classNames = folders;
  }
  const labelled: Sample[] = [];
  classNames.forEach((cls, label) => {
    for (const f of listImageFiles(join(root, cls))) {
      labelled.push({ split: 'labelled', index: labelled.length, name: `${cls}/${f}`, path: join(root, cls, f), label });
    }
  });
  return { layout: 'folders', root, classNames, labelled, test: [], hash: datasetHash(classNames, labelled, []), readCulprits: [] };
}

/** Image files directly in `dir` (by extension, see IMAGE_EXTENSIONS; hidden entries and folders skipped), sorted by name. */
export function listImageFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((f) => !f.name.startsWith('.') && !f.isDirectory() && IMAGE_EXTENSIONS.includes(extname(f.name).toLowerCase()))
    .map((f) => f.name)
    .sort();
}

export interface ImageFolderReadOptions {
  /** Class names of the model that will predict (recorded in the Dataset; no labels are read). Default: none. */
  classNames?: readonly string[];
}

/**
 * Reads a plain folder of images (no CSV, no class folders) as unlabelled test samples: every image file directly
 * in `dir`, sorted by name; sample names are the file names. Throws E_DATA_LAYOUT when it holds no image file.
 */
export function readImageFolder(dir: string, options: ImageFolderReadOptions = {}): Dataset {
  const root = resolve(dir);
  const files = listImageFiles(root);
  if (files.length === 0) throw new DptrainError('E_DATA_LAYOUT', `${root} has no image files (${IMAGE_EXTENSIONS.join(', ')})`);
  const test: Sample[] = files.map((f, index) => ({ split: 'test', index, name: f, path: join(root, f), label: -1 }));
  const classNames = [...(options.classNames ?? [])];
  return { layout: 'folders', root, classNames, labelled: [], test, hash: datasetHash(classNames, [], test), readCulprits: [] };
}
