import { Packr } from 'msgpackr';
import { DptrainError } from '../errors.js';
import { MessageSchema, PROTOCOL_VERSION, type Message, type Outgoing } from './messages.js';

/**
 * Frames are msgpack maps. `moreTypes` makes typed arrays (Float32Array weights and gradients, Uint16Array
 * fp16 gradients, Uint32Array sample indices) travel as raw little-endian bytes in an extension, never number by number.
 */
const packr = new Packr({ moreTypes: true, useRecords: false, mapsAsObjects: true });

export function encodeMessage(message: Outgoing): Buffer {
  return packr.pack({ v: PROTOCOL_VERSION, ...message });
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
    raw = packr.unpack(buf);
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
