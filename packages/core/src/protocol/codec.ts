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

/**
 * Encodes a message as the parts of one frame, without copying its large typed arrays: the header part, then each
 * blob's own bytes (a view of the caller's array) and zero padding to 8 bytes. Their concatenation is exactly
 * `encodeMessage(message)`. Send them as the fragments of one WebSocket message (`sendMessage`) and the arrays go
 * from memory to the socket with no copy in between; the caller must not modify them until the send completes.
 */
export function encodeMessageParts(message: Outgoing): Buffer[] {
  const full: Record<string, unknown> = { v: PROTOCOL_VERSION, ...message };
  const blobs: { key: string; type: number; data: BlobArray }[] = [];
  for (const [key, value] of Object.entries(full)) {
    const t = blobType(value);
    if (t >= 0) blobs.push({ key, type: t, data: value as BlobArray });
  }
  if (blobs.length === 0) return [packr.pack(full)];
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
  const head = Buffer.alloc(start);
  head[0] = BLOB_MARKER;
  head.writeUInt32LE(header.length, 1);
  header.copy(head, 5);
  const parts: Buffer[] = [head];
  for (const b of blobs) {
    parts.push(Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength));
    const pad = Math.ceil(b.data.byteLength / 8) * 8 - b.data.byteLength;
    if (pad > 0) parts.push(Buffer.alloc(pad));
  }
  return parts;
}

/** Encodes a message as one buffer (copies its arrays; `encodeMessageParts` does not). */
export function encodeMessage(message: Outgoing): Buffer {
  const parts = encodeMessageParts(message);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/** The subset of a WebSocket that `sendMessage` needs (ws's WebSocket fits). */
export interface FragmentSink {
  send(data: Buffer, options: { binary: boolean; fin: boolean }): void;
}

/**
 * Sends a message as one WebSocket message whose fragments are `encodeMessageParts`' parts: large arrays are
 * written from the caller's memory (zero-copy). The arrays must not change until the socket has sent them.
 */
export function sendMessage(ws: FragmentSink, message: Outgoing): void {
  const parts = encodeMessageParts(message);
  parts.forEach((p, i) => ws.send(p, { binary: true, fin: i === parts.length - 1 }));
}

/**
 * Where a large array of a frame being decoded is to go: called with the frame's header fields (not yet checked
 * against the schema), the array's key and its byte length; a buffer of exactly that length to gather it into (the
 * decoded array is then a view of it: one copy out of the received fragments, into memory the caller keeps), or
 * undefined (a view of the frame when it lies in one fragment, else a fresh copy).
 */
export type BlobDestination = (header: Readonly<Record<string, unknown>>, key: string, bytes: number) => Uint8Array | undefined;

/**
 * A blob frame, whole (one buffer) or as the fragments it was received in (ws `binaryType: 'fragments'`): arrays
 * that lie inside one fragment, aligned, become views of it (no reassembly copy); anything else is gathered.
 */
function decodeBlobFrame(frags: Buffer[], into?: BlobDestination): unknown {
  const first = frags[0]!;
  const hlen = first.length >= 5 ? first.readUInt32LE(1) : -1;
  if (hlen < 0 || 5 + hlen > first.length) {
    if (frags.length > 1) return decodeBlobFrame([Buffer.concat(frags)], into); // the header itself is split
    throw new Error(hlen < 0 ? 'truncated blob frame' : 'blob frame header runs past the end');
  }
  return decodeBlobLayout(first.subarray(5, 5 + hlen), Math.ceil((5 + hlen) / 8) * 8, frags, into);
}

/** Reads `bytes` bytes at virtual offset `begin` of the concatenation of `frags`: a view when in one fragment. */
function locate(frags: Buffer[], begin: number, bytes: number): { buf: Buffer; at: number } | Buffer {
  let pos = 0;
  for (const f of frags) {
    if (begin >= pos && begin + bytes <= pos + f.length) return { buf: f, at: begin - pos };
    if (begin < pos + f.length) break;
    pos += f.length;
  }
  // spans fragments: gather
  return gather(frags, begin, bytes, Buffer.allocUnsafe(bytes));
}

/** Copies `bytes` bytes at virtual offset `begin` of the concatenation of `frags` into `out`; returns `out`. */
function gather<T extends Uint8Array>(frags: Buffer[], begin: number, bytes: number, out: T): T {
  let copied = 0;
  let pos = 0;
  for (const f of frags) {
    const from = Math.max(begin, pos);
    const to = Math.min(begin + bytes, pos + f.length);
    if (to > from) {
      out.set(f.subarray(from - pos, to - pos), copied);
      copied += to - from;
    }
    pos += f.length;
  }
  return out;
}

function decodeBlobLayout(headerBytes: Buffer, start: number, frags: Buffer[], into?: BlobDestination): unknown {
  const total = frags.reduce((a, f) => a + f.length, 0);
  const head = packr.unpack(headerBytes) as Record<string, unknown>;
  if (head === null || typeof head !== 'object' || Array.isArray(head)) throw new Error('blob frame header is not a map');
  const layout = head.__blobs;
  delete head.__blobs;
  if (!Array.isArray(layout) || layout.length > 8) throw new Error('blob frame without a valid layout');
  for (const entry of layout) {
    if (!Array.isArray(entry) || entry.length !== 4) throw new Error('bad blob layout entry');
    const [key, type, offset, length] = entry as unknown[];
    const C = typeof type === 'number' ? BLOB_TYPES[type] : undefined;
    if (
      typeof key !== 'string' ||
      key === '__proto__' ||
      !C ||
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(length) ||
      (offset as number) < 0 ||
      (length as number) < 0
    ) {
      throw new Error('bad blob layout entry');
    }
    const bytes = (length as number) * C.BYTES_PER_ELEMENT;
    const begin = start + (offset as number);
    if (begin + bytes > total) throw new Error(`blob '${key}' runs past the end of the frame`);
    const dest = into?.(head, key, bytes);
    if (dest && dest.byteLength === bytes && dest.byteOffset % C.BYTES_PER_ELEMENT === 0) {
      head[key] = new C(gather(frags, begin, bytes, dest).buffer as ArrayBuffer, dest.byteOffset, length as number);
      continue;
    }
    const where = locate(frags, begin, bytes);
    const buf = Buffer.isBuffer(where) ? where : where.buf;
    const abs = buf.byteOffset + (Buffer.isBuffer(where) ? 0 : where.at);
    head[key] =
      abs % C.BYTES_PER_ELEMENT === 0
        ? new C(buf.buffer as ArrayBuffer, abs, length as number) // zero-copy view
        : new C(new Uint8Array(buf.buffer, abs, bytes).slice().buffer);
  }
  return head;
}

function asBuffer(data: Buffer | ArrayBuffer | Uint8Array): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Decodes and checks one frame: size, msgpack, version, schema. Throws DptrainError with
 * E_PROTOCOL_OVERSIZE / E_PROTOCOL_DECODE / E_PROTOCOL_VERSION / E_PROTOCOL_SCHEMA.
 */
export function decodeMessage(data: Buffer | ArrayBuffer | Buffer[] | Uint8Array, maxPayload = Infinity, into?: BlobDestination): Message {
  const frags = Array.isArray(data) ? data : [asBuffer(data)];
  const length = frags.reduce((a, f) => a + f.length, 0);
  if (length > maxPayload) throw new DptrainError('E_PROTOCOL_OVERSIZE', `frame of ${length} bytes exceeds the limit of ${maxPayload}`);
  let raw: unknown;
  try {
    if (frags.find((f) => f.length > 0)?.[0] === BLOB_MARKER) raw = decodeBlobFrame(frags, into);
    else raw = packr.unpack(frags.length === 1 ? frags[0]! : Buffer.concat(frags));
  } catch (err) {
    throw new DptrainError('E_PROTOCOL_DECODE', `frame is not valid msgpack: ${(err as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new DptrainError('E_PROTOCOL_DECODE', 'frame is not a msgpack map');
  }
  const version = (raw as { v?: unknown }).v;
  if (version !== PROTOCOL_VERSION) {
    throw new DptrainError(
      'E_PROTOCOL_VERSION',
      `the peer speaks protocol version ${JSON.stringify(version) ?? '(none)'}, this side speaks version ${PROTOCOL_VERSION}: run the same dptrain release on both`,
    );
  }
  const parsed = MessageSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const kind = typeof (raw as { type?: unknown }).type === 'string' ? (raw as { type: string }).type : '?';
    throw new DptrainError(
      'E_PROTOCOL_SCHEMA',
      `'${kind.slice(0, 40)}' message does not match its schema: ${issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid'}`,
    );
  }
  return parsed.data;
}
