import { createHash } from 'node:crypto';
import { DptrainError } from '../errors.js';

/**
 * The integrity envelope of a checkpoint file (format version 2): a fixed 48-byte header, then the body.
 * Layout: 8-byte magic `DPTCKPT2`, uint64 LE body length, 32-byte SHA-256 of the body, body.
 * Version-1 checkpoints are a bare body (it starts with the state codec's own magic `DPTSTATE`).
 */
export const ENVELOPE_MAGIC = 'DPTCKPT2';
/** Bytes before the body. */
export const ENVELOPE_HEADER_BYTES = 48;
const BODY_MAGIC_V1 = 'DPTSTATE';

/** Wraps a checkpoint body in the version-2 envelope (length + SHA-256). */
export function sealCheckpoint(body: Uint8Array): Buffer {
  const out = Buffer.alloc(ENVELOPE_HEADER_BYTES + body.length);
  out.write(ENVELOPE_MAGIC, 0, 'latin1');
  out.writeBigUInt64LE(BigInt(body.length), 8);
  createHash('sha256').update(body).digest().copy(out, 16);
  out.set(body, ENVELOPE_HEADER_BYTES);
  return out;
}

/** An opened checkpoint file: its body and the format version it was written in. */
export interface OpenedCheckpoint {
  /** 2: checked length and SHA-256; 1: a legacy file with no integrity check. */
  version: 1 | 2;
  body: Buffer;
}

/**
 * Checks the envelope of a checkpoint file and returns its body. Throws DptrainError('E_CHECKPOINT') naming
 * `file` and what was wrong: an unknown signature, a truncated file, trailing bytes after the body, or a body
 * whose SHA-256 does not match. A version-1 file (no envelope) is returned as is, with version 1.
 */
export function openCheckpoint(buf: Buffer, file: string): OpenedCheckpoint {
  const magic = buf.toString('latin1', 0, Math.min(8, buf.length));
  if (magic === BODY_MAGIC_V1) return { version: 1, body: buf };
  if (magic !== ENVELOPE_MAGIC) {
    throw new DptrainError('E_CHECKPOINT', `${file}: not a dptrain checkpoint (unknown signature); the file is corrupt or foreign`);
  }
  if (buf.length < ENVELOPE_HEADER_BYTES) {
    throw new DptrainError('E_CHECKPOINT', `${file}: truncated checkpoint header (${buf.length} of ${ENVELOPE_HEADER_BYTES} bytes)`);
  }
  const declared = buf.readBigUInt64LE(8);
  const actual = BigInt(buf.length - ENVELOPE_HEADER_BYTES);
  if (actual < declared) {
    throw new DptrainError('E_CHECKPOINT', `${file}: truncated checkpoint (body has ${actual} of ${declared} bytes)`);
  }
  if (actual > declared) {
    throw new DptrainError('E_CHECKPOINT', `${file}: ${actual - declared} unexpected trailing bytes after the checkpoint body (${declared} bytes declared)`);
  }
  const body = buf.subarray(ENVELOPE_HEADER_BYTES);
  const expected = buf.subarray(16, 48);
  const got = createHash('sha256').update(body).digest();
  if (!got.equals(expected)) {
    throw new DptrainError(
      'E_CHECKPOINT',
      `${file}: checksum mismatch: the body's SHA-256 is ${got.toString('hex')}, the header says ${expected.toString('hex')}; the file is corrupt`,
    );
  }
  return { version: 2, body };
}
