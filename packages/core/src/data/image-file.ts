import { constants, promises as fs } from 'node:fs';
import { isAbsolute, relative } from 'node:path';
import { DptrainError } from '../errors.js';
import { clipForMessage } from './clip.js';

/** Largest image file read by default: 64 MiB (a 150x150 JPEG is a few dozen KB; a raw 8K TIFF about 100 MB). */
export const DEFAULT_MAX_IMAGE_BYTES = 64 * 1024 * 1024;

export interface ReadImageFileOptions {
  /** Folder the file must stay inside once symlinks are resolved (its real path). Default: no containment check. */
  root?: string;
  /** Largest file read, in bytes; larger files are refused before reading. Default DEFAULT_MAX_IMAGE_BYTES (64 MiB). */
  maxBytes?: number;
}

/** Why an image file was refused before decoding (Culprit reason codes). */
export type ImageFileRefusal = 'missing' | 'not_image' | 'outside_root' | 'too_large';

/** The details of an E_DATA_IMAGE thrown by readImageFile. */
export interface ImageFileErrorDetails {
  file: string;
  reason: ImageFileRefusal;
}

const realRoots = new Map<string, Promise<string>>();
function realRoot(root: string): Promise<string> {
  let p = realRoots.get(root);
  if (!p) {
    p = fs.realpath(root);
    p.catch(() => realRoots.delete(root));
    realRoots.set(root, p);
  }
  return p;
}

function refuse(file: string, reason: ImageFileRefusal, what: string): never {
  throw new DptrainError('E_DATA_IMAGE', `${clipForMessage(file)}: ${what}`, { file, reason } satisfies ImageFileErrorDetails);
}

/**
 * Reads an image file safely: resolves its real path and refuses one outside `root` (a symlink escaping the
 * image folder), opens it without blocking and refuses anything but a regular file (a FIFO, a device, a
 * directory), and refuses a file larger than `maxBytes` before reading it. Throws DptrainError('E_DATA_IMAGE')
 * whose details are ImageFileErrorDetails.
 */
export async function readImageFile(file: string, options: ReadImageFileOptions = {}): Promise<Buffer> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_IMAGE_BYTES;
  let target = file;
  try {
    target = await fs.realpath(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') refuse(file, 'missing', 'file not found');
    if (code === 'ELOOP') refuse(file, 'not_image', 'symbolic link loop');
    if (code === 'ENAMETOOLONG') refuse(file, 'missing', 'file name too long for the file system');
    refuse(file, 'missing', `cannot read file: ${clipForMessage((e as Error).message, 300)}`);
  }
  if (options.root !== undefined) {
    const root = await realRoot(options.root);
    const rel = relative(root, target);
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) {
      refuse(file, 'outside_root', `resolves to ${clipForMessage(target)}, outside the image folder ${clipForMessage(root)}`);
    }
  }
  let fh: fs.FileHandle;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer
    fh = await fs.open(target, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') refuse(file, 'missing', 'file not found');
    if (code === 'EISDIR') refuse(file, 'not_image', 'is a directory, not an image');
    refuse(file, 'missing', `cannot read file: ${clipForMessage((e as Error).message, 300)}`);
  }
  try {
    const st = await fh.stat();
    if (st.isDirectory()) refuse(file, 'not_image', 'is a directory, not an image');
    if (!st.isFile()) {
      const kind = st.isFIFO() ? 'a FIFO' : st.isSocket() ? 'a socket' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : 'not a regular file';
      refuse(file, 'not_image', `is ${kind}, not a regular image file`);
    }
    if (st.size > maxBytes) refuse(file, 'too_large', `${st.size} bytes, larger than the limit of ${maxBytes} bytes (maxImageBytes)`);
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < buf.length) {
      const { bytesRead } = await fh.read(buf, off, buf.length - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    return off === buf.length ? buf : buf.subarray(0, off);
  } finally {
    await fh.close();
  }
}

/** The refusal reason of an error thrown by readImageFile, or undefined for another error. */
export function imageFileRefusal(e: unknown): ImageFileErrorDetails | undefined {
  if (!(e instanceof DptrainError) || e.code !== 'E_DATA_IMAGE') return undefined;
  const d = e.details as Partial<ImageFileErrorDetails> | undefined;
  return d && typeof d.reason === 'string' && typeof d.file === 'string' ? (d as ImageFileErrorDetails) : undefined;
}
