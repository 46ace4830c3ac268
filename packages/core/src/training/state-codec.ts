import { DptrainError } from '../errors.js';

const MAGIC = 'DPTSTATE';

/**
 * Binary encoding of a JSON-like value that may contain Float32Arrays: a JSON header in which each
 * Float32Array is replaced by `{ "$f32": i }`, followed by the arrays' raw little-endian bytes.
 * Layout: 8-byte magic, uint32 header length, header (UTF-8), padding to 4 bytes, blobs.
 */
export function encodeState(value: unknown): Buffer {
  const blobs: Float32Array[] = [];
  const header = JSON.stringify(value, (_k, v: unknown) => {
    if (v instanceof Float32Array) {
      blobs.push(v);
      return { $f32: blobs.length - 1, length: v.length };
    }
    if (typeof v === 'number' && !Number.isFinite(v)) return { $num: String(v) };
    return v;
  });
  const headerBytes = Buffer.from(header, 'utf8');
  let offset = 12 + headerBytes.length;
  const pad = (4 - (offset % 4)) % 4;
  offset += pad;
  const total = offset + blobs.reduce((s, b) => s + b.byteLength, 0);
  const out = Buffer.alloc(total);
  out.write(MAGIC, 0, 'latin1');
  out.writeUInt32LE(headerBytes.length, 8);
  headerBytes.copy(out, 12);
  for (const b of blobs) {
    const bytes = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
    if (isLittleEndian) bytes.copy(out, offset);
    else for (let i = 0; i < b.length; i++) out.writeFloatLE(b[i] as number, offset + 4 * i);
    offset += b.byteLength;
  }
  return out;
}

const isLittleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Inverse of `encodeState`. Throws E_CHECKPOINT on a truncated, corrupt or foreign buffer, or one with trailing bytes. */
export function decodeState<T = unknown>(buf: Buffer, what = 'state'): T {
  if (buf.length < 12 || buf.toString('latin1', 0, 8) !== MAGIC) throw new DptrainError('E_CHECKPOINT', `${what}: not a dptrain state file`);
  const hlen = buf.readUInt32LE(8);
  if (12 + hlen > buf.length) throw new DptrainError('E_CHECKPOINT', `${what}: truncated header`);
  const headerText = buf.toString('utf8', 12, 12 + hlen);
  let offset = 12 + hlen;
  offset += (4 - (offset % 4)) % 4;
  const starts: number[] = [];
  let parsed: unknown;
  // second pass in header order: blobs are laid out in the order encodeState met them
  const lengths: number[] = [];
  try {
    parsed = JSON.parse(headerText, (_k, v: unknown) => {
      if (v && typeof v === 'object' && '$num' in v) return Number((v as { $num: string }).$num);
      return v;
    }) as unknown;
    JSON.parse(headerText, (_k, v: unknown) => {
      if (v && typeof v === 'object' && '$f32' in v) {
        const o = v as { $f32: unknown; length: unknown };
        if (!Number.isSafeInteger(o.$f32) || !Number.isSafeInteger(o.length) || (o.$f32 as number) < 0 || (o.length as number) < 0) {
          throw new Error(`bad array reference ${JSON.stringify(o).slice(0, 80)}`);
        }
        lengths[o.$f32 as number] = o.length as number;
      }
      return v;
    });
  } catch (e) {
    throw new DptrainError('E_CHECKPOINT', `${what}: corrupt header: ${(e as Error).message}`, undefined, { cause: e });
  }
  for (let i = 0; i < lengths.length; i++) {
    const len = lengths[i];
    if (len === undefined) throw new DptrainError('E_CHECKPOINT', `${what}: corrupt header: array ${i} is not described`);
    starts.push(offset);
    offset += 4 * len;
  }
  if (offset > buf.length) throw new DptrainError('E_CHECKPOINT', `${what}: truncated data (${buf.length} of ${offset} bytes)`);
  if (offset < buf.length)
    throw new DptrainError('E_CHECKPOINT', `${what}: ${buf.length - offset} unexpected trailing bytes after the data (${offset} bytes expected)`);
  const revive = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(revive);
    if (v && typeof v === 'object') {
      if ('$f32' in v) {
        const o = v as { $f32: number; length: number };
        const start = starts[o.$f32] as number;
        const arr = new Float32Array(o.length);
        if (isLittleEndian) new Uint8Array(arr.buffer).set(buf.subarray(start, start + 4 * o.length));
        else for (let i = 0; i < o.length; i++) arr[i] = buf.readFloatLE(start + 4 * i);
        return arr;
      }
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = revive(x);
      return out;
    }
    return v;
  };
  return revive(parsed) as T;
}
