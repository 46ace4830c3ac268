import { readFile } from 'node:fs/promises';
import { relative } from 'node:path';
import sharp from 'sharp';
import { DptrainError } from '../errors.js';
import { datasetHash } from './hash.js';
import { mapLimit } from './pool.js';
import { sniffImageFormat } from './sniff.js';
import type { Culprit, Dataset, Sample } from './types.js';

export interface ValidateDatasetOptions {
  /** Drop bad samples and return them instead of throwing. Default false. */
  skipBad?: boolean;
  /** Image files checked at the same time. Default 4. */
  concurrency?: number;
  /** Called after each image check with (done, total). Default: none. */
  onProgress?: (done: number, total: number) => void;
  /** Decode every image (false: only check that the files exist and look like images). Default true. */
  decode?: boolean;
  /** Culprits listed in the error message (all are in `details`). Default 200. */
  maxListed?: number;
}

export interface ValidationResult {
  /** The data set without the dropped samples (re-indexed and re-hashed); the input itself when nothing was dropped. */
  dataset: Dataset;
  /** Every culprit found (empty when the data is clean). */
  dropped: Culprit[];
  /** Number of image files checked. */
  checked: number;
}

/**
 * Checks one image file: exists, is an image (by its first bytes), and decodes (sharp metadata and a small
 * decode, failing on libjpeg warnings so truncated or garbled JPEGs are caught). Returns the culprit or undefined.
 */
export async function checkImageFile(sample: Sample, decode = true): Promise<Culprit | undefined> {
  const base = { file: sample.path, ...(sample.line !== undefined ? { line: sample.line } : {}) };
  let buf: Buffer;
  try {
    buf = await readFile(sample.path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { ...base, reason: 'missing', message: 'file not found' };
    if (code === 'EISDIR') return { ...base, reason: 'not_image', message: 'is a directory, not an image' };
    return { ...base, reason: 'missing', message: `cannot read file: ${(e as Error).message}` };
  }
  if (buf.length === 0) return { ...base, reason: 'not_image', message: 'empty file' };
  const format = sniffImageFormat(buf);
  if (!format) return { ...base, reason: 'not_image', message: 'not an image (unknown file signature)' };
  if (!decode) return undefined;
  try {
    const meta = await sharp(buf, { failOn: 'warning' }).metadata();
    if (!meta.width || !meta.height) throw new Error('no image dimensions');
    await sharp(buf, { failOn: 'warning' }).resize(8, 8, { fit: 'fill' }).raw().toBuffer();
    return undefined;
  } catch (e) {
    return { ...base, reason: 'corrupt', message: `corrupt ${format.toUpperCase()}: ${(e as Error).message.split('\n')[0]}` };
  }
}

function where(c: Culprit, root: string): string {
  const rel = relative(root, c.file) || c.file;
  return c.line !== undefined && !/\.csv$/i.test(c.file) ? `${rel} (CSV line ${c.line})` : c.line !== undefined ? `${rel} line ${c.line}` : rel;
}

/** Formats culprits one per line, e.g. "SceneImages/3.jpg (CSV line 4): missing: file not found". */
export function formatCulprits(culprits: readonly Culprit[], root: string, maxListed = 200): string {
  const lines = culprits.slice(0, maxListed).map((c) => `  ${where(c, root)}: ${c.reason}: ${c.message}`);
  if (culprits.length > maxListed) lines.push(`  ... and ${culprits.length - maxListed} more (see error.details)`);
  return lines.join('\n');
}

function summary(culprits: readonly Culprit[]): string {
  const counts = new Map<string, number>();
  for (const c of culprits) counts.set(c.reason, (counts.get(c.reason) ?? 0) + 1);
  return [...counts].map(([r, n]) => `${n} ${r}`).join(', ');
}

/**
 * Validation pass before training: reports the CSV problems found when reading (`readCulprits`) and checks
 * every image file (labelled and test) in parallel. With culprits and without `skipBad`, throws one
 * DptrainError('E_DATA_INVALID') listing each culprit (file and CSV line) whose `details` is the Culprit[];
 * with `skipBad`, returns the cleaned data set and the dropped culprits.
 */
export async function validateDataset(dataset: Dataset, options: ValidateDatasetOptions = {}): Promise<ValidationResult> {
  const all = [...dataset.labelled, ...dataset.test];
  const total = all.length;
  let done = 0;
  const found = await mapLimit(all, options.concurrency ?? 4, async (s) => {
    const c = await checkImageFile(s, options.decode ?? true);
    done++;
    options.onProgress?.(done, total);
    return c;
  });
  const imageCulprits = found.filter((c): c is Culprit => c !== undefined);
  const culprits = [...(dataset.readCulprits ?? []), ...imageCulprits];
  if (culprits.length === 0) return { dataset, dropped: [], checked: total };
  if (!options.skipBad) {
    const msg =
      `data validation found ${culprits.length} problem${culprits.length === 1 ? '' : 's'} in ${dataset.root} ` +
      `(${summary(culprits)}); fix them or pass --skip-bad to drop them:\n` +
      formatCulprits(culprits, dataset.root, options.maxListed);
    throw new DptrainError('E_DATA_INVALID', msg, culprits);
  }
  const bad = new Set(imageCulprits.map((c) => c.file));
  const keep = (list: Sample[]) => list.filter((s) => !bad.has(s.path)).map((s, index) => ({ ...s, index }));
  const labelled = keep(dataset.labelled);
  const test = keep(dataset.test);
  return {
    dataset: { ...dataset, labelled, test, hash: datasetHash(dataset.classNames, labelled, test), readCulprits: [] },
    dropped: culprits,
    checked: total,
  };
}
