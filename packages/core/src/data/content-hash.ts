import { createHash } from 'node:crypto';
import type { RunConfig } from '../config.js';
import { imageFileRefusal, readImageFile, type ReadImageFileOptions } from './image-file.js';
import pMap from 'p-map';
import type { Dataset, Sample } from './types.js';

/**
 * What the data set's content hash covers: 'full' hashes every image file, 'sampled' a fixed sample of
 * `sampleSize` files chosen by name (the same on every machine), 'none' only names and labels (Dataset.hash).
 */
export type ContentHashMode = 'none' | 'sampled' | 'full';

/** Files hashed by the 'sampled' mode by default. */
export const DEFAULT_CONTENT_SAMPLE_SIZE = 64;

export interface ContentHashOptions extends ReadImageFileOptions {
  /** 'sampled' or 'full'. Default 'sampled'. */
  mode?: Exclude<ContentHashMode, 'none'>;
  /** Files hashed in 'sampled' mode. Default DEFAULT_CONTENT_SAMPLE_SIZE (64). */
  sampleSize?: number;
  /** Files read at the same time. Default 4. */
  concurrency?: number;
}

const allSamples = (d: Pick<Dataset, 'labelled' | 'test'>): Sample[] => [...d.labelled, ...d.test];
const key = (s: Sample): string => `${s.split === 'test' ? 'T' : 'L'}\t${s.name}`;

/** The samples whose files a content hash of this mode covers, in hashing order (by name's SHA-256 for 'sampled'). */
export function contentHashSamples(
  dataset: Pick<Dataset, 'labelled' | 'test'>,
  mode: Exclude<ContentHashMode, 'none'>,
  sampleSize = DEFAULT_CONTENT_SAMPLE_SIZE,
): Sample[] {
  const all = allSamples(dataset);
  if (mode === 'full' || all.length <= sampleSize) return all;
  const rank = (s: Sample): string => createHash('sha256').update(key(s)).digest('hex');
  return all
    .map((s) => ({ s, r: rank(s) }))
    .sort((a, b) => (a.r < b.r ? -1 : a.r > b.r ? 1 : 0))
    .slice(0, sampleSize)
    .map((x) => x.s);
}

/** Digest of one file's bytes, or of the reason it could not be read (so two copies missing the same file agree). */
export function fileDigest(bytes: Uint8Array | { refused: string }): string {
  if ('refused' in bytes) return `!${bytes.refused}`;
  return createHash('sha256').update(bytes).digest('hex');
}

/** Combines per-file digests (in `contentHashSamples` order) into the content hash. */
export function combineContentHash(mode: Exclude<ContentHashMode, 'none'>, samples: readonly Sample[], digests: ReadonlyMap<Sample, string>): string {
  const h = createHash('sha256');
  h.update(`content-${mode}\n`);
  for (const s of samples) h.update(`${key(s)}\t${digests.get(s) ?? '!unread'}\n`);
  return h.digest('hex');
}

/**
 * Hash of the image files' bytes (all, or a sample), so that a worker whose images were replaced is refused
 * at join even though names and labels match. Files that cannot be read count by their refusal reason.
 */
export async function datasetContentHash(dataset: Pick<Dataset, 'labelled' | 'test' | 'imagesRoot'>, options: ContentHashOptions = {}): Promise<string> {
  const mode = options.mode ?? 'sampled';
  const samples = contentHashSamples(dataset, mode, options.sampleSize);
  const digests = new Map<Sample, string>();
  const root = options.root ?? dataset.imagesRoot;
  await pMap(
    samples,
    async (s) => {
      try {
        const bytes = await readImageFile(s.path, {
          ...(root !== undefined ? { root } : {}),
          ...(options.maxBytes !== undefined ? { maxBytes: options.maxBytes } : {}),
        });
        digests.set(s, fileDigest(bytes));
      } catch (e) {
        const refusal = imageFileRefusal(e);
        if (!refusal) throw e;
        digests.set(s, fileDigest({ refused: refusal.reason }));
      }
    },
    { concurrency: options.concurrency ?? 4 },
  );
  return combineContentHash(mode, samples, digests);
}

/**
 * The identity a worker proves at join: the names-and-labels hash, followed by the content hash when one is
 * used (`<hash>+<mode>:<content hash>`).
 */
export function datasetIdentity(namesHash: string, mode: ContentHashMode, contentHash?: string): string {
  return mode === 'none' || contentHash === undefined ? namesHash : `${namesHash}+${mode}:${contentHash}`;
}

/** The run settings that decide the join identity. */
export type DatasetIdentitySettings = Pick<RunConfig, 'contentHash' | 'contentSampleSize' | 'maxImageBytes'>;

/** Computes the identity a data copy proves at join under the run's settings (reads files unless contentHash is 'none'). */
export async function joinDatasetIdentity(
  dataset: Pick<Dataset, 'hash' | 'labelled' | 'test' | 'imagesRoot'>,
  settings: DatasetIdentitySettings,
): Promise<string> {
  if (settings.contentHash === 'none') return dataset.hash;
  const content = await datasetContentHash(dataset, { mode: settings.contentHash, sampleSize: settings.contentSampleSize, maxBytes: settings.maxImageBytes });
  return datasetIdentity(dataset.hash, settings.contentHash, content);
}
