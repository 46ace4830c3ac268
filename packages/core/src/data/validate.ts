import { relative } from 'node:path';
import sharp from 'sharp';
import { DptrainError } from '../errors.js';
import { clipForMessage } from './clip.js';
import { combineContentHash, contentHashSamples, fileDigest, type ContentHashMode } from './content-hash.js';
import { datasetHash } from './hash.js';
import { imageFileRefusal, readImageFile } from './image-file.js';
import pMap from 'p-map';
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
  /** Largest image file read, in bytes; larger ones are culprits ('too_large'). Default DEFAULT_MAX_IMAGE_BYTES (64 MiB). */
  maxImageBytes?: number;
  /** Content hash computed from the bytes the pass reads anyway ('sampled', 'full'), or none. Default 'none'. */
  contentHash?: ContentHashMode;
  /** Files hashed by the 'sampled' content hash. Default DEFAULT_CONTENT_SAMPLE_SIZE (64). */
  contentSampleSize?: number;
}

export interface ValidationResult {
  /** The data set without the dropped samples (re-indexed and re-hashed); the input itself when nothing was dropped. */
  dataset: Dataset;
  /** Every culprit found (empty when the data is clean). */
  dropped: Culprit[];
  /** Number of image files checked. */
  checked: number;
  /** Content hash of the input data set's files (see datasetContentHash), when `contentHash` asked for one. */
  contentHash?: string;
}

/** Limits of one image check. */
export interface CheckImageFileOptions {
  /** Decode the image (false: only check that the file is readable and looks like an image). Default true. */
  decode?: boolean;
  /** Folder the file must stay inside once symlinks are resolved. Default: no containment check. */
  root?: string;
  /** Largest file read, in bytes. Default DEFAULT_MAX_IMAGE_BYTES (64 MiB). */
  maxBytes?: number;
  /** Receives the file's bytes once read (e.g. for the content hash). Default: none. */
  onBytes?: (bytes: Buffer) => void;
}

/**
 * Checks one image file: a regular file inside `root` (symlinks resolved), not larger than `maxBytes`, an image
 * by its first bytes, and decodes (sharp metadata and a small decode, failing on libjpeg warnings so truncated
 * or garbled JPEGs are caught). Returns the culprit or undefined. `options` may be a boolean: `decode`.
 */
export async function checkImageFile(sample: Sample, options: CheckImageFileOptions | boolean = {}): Promise<Culprit | undefined> {
  const opts: CheckImageFileOptions = typeof options === 'boolean' ? { decode: options } : options;
  const base = { file: sample.path, ...(sample.line !== undefined ? { line: sample.line } : {}) };
  let buf: Buffer;
  try {
    buf = await readImageFile(sample.path, {
      ...(opts.root !== undefined ? { root: opts.root } : {}),
      ...(opts.maxBytes !== undefined ? { maxBytes: opts.maxBytes } : {}),
    });
  } catch (e) {
    const refusal = imageFileRefusal(e);
    if (!refusal) throw e;
    const message = (e as Error).message;
    const prefix = `${clipForMessage(sample.path)}: `;
    return { ...base, reason: refusal.reason, message: message.startsWith(prefix) ? message.slice(prefix.length) : message };
  }
  opts.onBytes?.(buf);
  if (buf.length === 0) return { ...base, reason: 'not_image', message: 'empty file' };
  const format = sniffImageFormat(buf);
  if (!format) return { ...base, reason: 'not_image', message: 'not an image (unknown file signature)' };
  if (!(opts.decode ?? true)) return undefined;
  try {
    const meta = await sharp(buf, { failOn: 'warning' }).metadata();
    if (!meta.width || !meta.height) throw new Error('no image dimensions');
    await sharp(buf, { failOn: 'warning' }).resize(8, 8, { fit: 'fill' }).raw().toBuffer();
    return undefined;
  } catch (e) {
    return { ...base, reason: 'corrupt', message: `corrupt ${format.toUpperCase()}: ${clipForMessage((e as Error).message.split('\n')[0] ?? '', 300)}` };
  }
}

function where(c: Culprit, root: string): string {
  const rel = clipForMessage(relative(root, c.file) || c.file);
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
  const mode = options.contentHash ?? 'none';
  const hashed = mode === 'none' ? [] : contentHashSamples(dataset, mode, options.contentSampleSize);
  const toHash = new Set(hashed);
  const digests = new Map<Sample, string>();
  const root = dataset.imagesRoot;
  const found = await pMap(
    all,
    async (s) => {
      const c = await checkImageFile(s, {
        decode: options.decode ?? true,
        ...(root !== undefined ? { root } : {}),
        ...(options.maxImageBytes !== undefined ? { maxBytes: options.maxImageBytes } : {}),
        ...(toHash.has(s) ? { onBytes: (b: Buffer) => digests.set(s, fileDigest(b)) } : {}),
      });
      if (toHash.has(s) && !digests.has(s) && c) digests.set(s, fileDigest({ refused: c.reason }));
      done++;
      options.onProgress?.(done, total);
      return c;
    },
    { concurrency: options.concurrency ?? 4 },
  );
  const contentHash = mode === 'none' ? undefined : combineContentHash(mode, hashed, digests);
  const withHash = contentHash !== undefined ? { contentHash } : {};
  const imageCulprits = found.filter((c): c is Culprit => c !== undefined);
  const culprits = [...(dataset.readCulprits ?? []), ...imageCulprits];
  if (culprits.length === 0) return { dataset, dropped: [], checked: total, ...withHash };
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
    ...withHash,
  };
}
