import { Packr } from 'msgpackr';
import { DptrainError } from '../errors.js';
import { MessageSchema, PROTOCOL_VERSION, type Message, type Outgoing } from './messages.js';

/**
 * Frames are msgpack maps. `moreTypes` makes typed arrays (Float32Array weights and gradients, Uint16Array
 * fp16 gradients, Uint32Array sample indices) travel as raw little-endian bytes in an extension, never number by number.
 */
const packr = new Packr({ moreTypes: true, useRecords: false, mapsAsObjects: true });

/**
 * Large typed arrays (weights, gradients) skip msgpack entirely: the frame is
 * `0xc1 | u32le header length | msgpack header | pad | raw bytes...`, each array 8-byte aligned, so the receiver
 * takes zero-copy views of the received buffer instead of copying 37 MB. 0xc1 is never a msgpack lead byte.
 */
const BLOB_MARKER = 0xc1;
/** Typed arrays at least this big travel as blobs. */
export const BLOB_MIN_BYTES = 64 * 1024;
const BLOB_TYPES = [Float32Array, Uint16Array, Uint32Array, Uint8Array] as const;
type BlobArray = Float32Array | Uint16Array | Uint32Array | Uint8Array;

function blobType(x: unknown): number {
  if (!ArrayBuffer.isView(x) || x.byteLength < BLOB_MIN_BYTES || Buffer.isBuffer(x)) return -1;
  return BLOB_TYPES.findIndex((C) => x.constructor === C);
}

export function encodeMessage(message: Outgoing): Buffer {
  const full: Record<string, unknown> = { v: PROTOCOL_VERSION, ...message };
  const blobs: { key: string; type: number; data: BlobArray }[] = [];
  for (const [key, value] of Object.entries(full)) {
    const t = blobType(value);
    if (t >= 0) blobs.push({ key, type: t, data: value as BlobArray });
  }
  if (blobs.length === 0) return packr.pack(full);
  const layout: [string, number, number, number][] = [];
  for (const b of blobs) delete full[b.key];
  // offsets are relative to the start of the blob area, which begins 8-aligned
  let at = 0;
  for (const b of blobs) {
    layout.push([b.key, b.type, at, b.data.length]);
    at += Math.ceil(b.data.byteLength / 8) * 8;
  }
  full.__blobs = layout;
  const header = packr.pack(full);
  const start = Math.ceil((5 + header.length) / 8) * 8;
  const frame = Buffer.allocUnsafe(start + at);
  frame[0] = BLOB_MARKER;
  frame.writeUInt32LE(header.length, 1);
  header.copy(frame, 5);
  frame.fill(0, 5 + header.length, start);
  for (const [i, b] of blobs.entries()) {
    frame.set(new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength), start + layout[i]![2]);
  }
  return frame;
}

function decodeBlobFrame(buf: Buffer): unknown {
  if (buf.length < 5) throw new Error('truncated blob frame');
  const hlen = buf.readUInt32LE(1);
  if (5 + hlen > buf.length) throw new Error('blob frame header runs past the end');
  const head = packr.unpack(buf.subarray(5, 5 + hlen)) as Record<string, unknown>;
  if (head === null || typeof head !== 'object' || Array.isArray(head)) throw new Error('blob frame header is not a map');
  const layout = head.__blobs;
  delete head.__blobs;
  if (!Array.isArray(layout) || layout.length > 8) throw new Error('blob frame without a valid layout');
  const start = Math.ceil((5 + hlen) / 8) * 8;
  for (const entry of layout) {
    if (!Array.isArray(entry) || entry.length !== 4) throw new Error('bad blob layout entry');
    const [key, type, offset, length] = entry as unknown[];
    const C = typeof type === 'number' ? BLOB_TYPES[type] : undefined;
    if (typeof key !== 'string' || key === '__proto__' || !C || !Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || (offset as number) < 0 || (length as number) < 0) {
      throw new Error('bad blob layout entry');
    }
    const bytes = (length as number) * C.BYTES_PER_ELEMENT;
    const begin = start + (offset as number);
    if (begin + bytes > buf.length) throw new Error(`blob '${key}' runs past the end of the frame`);
    const abs = buf.byteOffset + begin;
    head[key] =
      abs % C.BYTES_PER_ELEMENT === 0
        ? new C(buf.buffer as ArrayBuffer, abs, length as number) // zero-copy view
        : new C(new Uint8Array(buf.buffer, abs, bytes).slice().buffer);
  }
  return head;
}

function asBuffer(data: Buffer | ArrayBuffer | Buffer[] | Uint8Array): Buffer {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Decodes and checks one frame: size, msgpack, version, schema. Throws DptrainError with
 * E_PROTOCOL_OVERSIZE / E_PROTOCOL_DECODE / E_PROTOCOL_VERSION / E_PROTOCOL_SCHEMA.
 */
export function decodeMessage(data: Buffer | ArrayBuffer | Buffer[] | Uint8Array, maxPayload = Infinity): Message {
  const buf = asBuffer(data);
  if (buf.length > maxPayload) throw new DptrainError('E_PROTOCOL_OVERSIZE', `frame of ${buf.length} bytes exceeds the limit of ${maxPayload}`);
  let raw: unknown;
  try {
    raw = buf[0] === BLOB_MARKER ? decodeBlobFrame(buf) : packr.unpack(buf);
  } catch (err) {
    throw new DptrainError('E_PROTOCOL_DECODE', `frame is not valid msgpack: ${(err as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new DptrainError('E_PROTOCOL_DECODE', 'frame is not a msgpack map');
  }
  const version = (raw as { v?: unknown }).v;
  if (version !== PROTOCOL_VERSION) {
    throw new DptrainError('E_PROTOCOL_VERSION', `protocol version ${JSON.stringify(version) ?? 'missing'} is not supported (expected ${PROTOCOL_VERSION})`);
  }
  const parsed = MessageSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const kind = typeof (raw as { type?: unknown }).type === 'string' ? (raw as { type: string }).type : '?';
    throw new DptrainError('E_PROTOCOL_SCHEMA', `'${kind.slice(0, 40)}' message does not match its schema: ${issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid'}`);
  }
  return parsed.data;
}
