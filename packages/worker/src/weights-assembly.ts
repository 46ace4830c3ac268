import { DptrainError, type MessageOf } from '@dptrain/core';

/** The version whose buckets the decoder writes into the assembly's memory ahead of `add` (see destination). */
interface Decoding {
  version: number;
  buffer: Float32Array;
  /** The next offset the decoder expects. */
  next: number;
}

const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

/**
 * Puts together the weights that the coordinator sends bucket by bucket (`weights_bucket`, in order, as its
 * optimizer finishes each range): `add` copies a bucket in and returns the whole vector once its last bucket is in.
 * A bucket of a newer version starts over (the older one was superseded); one out of order is refused.
 *
 * Two arrays take turns: the one returned for a version is left alone while the next version is put together, and
 * is refilled by the version after that (a replica keeps at most the last weights it was given; reusing warm memory
 * saves a fresh 37 MB allocation, and its page faults, every step).
 *
 * `destination` lets the decoder put a bucket's values straight where they belong (one copy out of the socket's
 * fragments, instead of a fresh array per bucket that `add` then copies again); `add` then finds them in place.
 */
export class WeightsAssembly {
  private version = -1;
  private next = 0;
  private buffer: Float32Array | undefined;
  /** The arrays returned for the last two versions, oldest first. */
  private readonly returned: Float32Array[] = [];
  private decoding: Decoding | undefined;

  /**
   * The codec's BlobDestination for a `weights_bucket` frame being decoded: the bytes of the assembly's memory the
   * bucket belongs in, when it is the next one in order (offset 0 of a version while no other is being put together,
   * or the next offset of the version under way); undefined for anything else (decoded as usual; `add` decides).
   */
  destination(header: Readonly<Record<string, unknown>>, key: string, bytes: number): Uint8Array | undefined {
    if (header.type !== 'weights_bucket' || key !== 'weights' || bytes % 4 !== 0) return undefined;
    const { version, offset, total } = header;
    if (!isCount(version) || !isCount(offset) || !isCount(total) || offset + bytes / 4 > total) return undefined;
    const d = this.decoding;
    if (offset === 0) {
      if (d || this.next !== 0 || total === 0) return undefined; // a version is under way: not its memory to take
      this.decoding = { version, buffer: this.bufferFor(total), next: bytes / 4 };
      return new Uint8Array(this.decoding.buffer.buffer, this.decoding.buffer.byteOffset, bytes);
    }
    if (!d || d.version !== version || d.next !== offset || d.buffer.length !== total) return undefined;
    d.next += bytes / 4;
    return new Uint8Array(d.buffer.buffer, d.buffer.byteOffset + offset * 4, bytes);
  }

  add(msg: MessageOf<'weights_bucket'>): Float32Array | undefined {
    const end = msg.offset + msg.weights.length;
    if (end > msg.total) {
      throw new DptrainError('E_PROTOCOL_SCHEMA', `weights_bucket of version ${msg.version}: [${msg.offset}, ${end}) runs past its total of ${msg.total}`);
    }
    if (msg.version !== this.version || msg.offset === 0) {
      this.version = msg.version;
      this.next = 0;
      // the version the decoder is writing into takes that memory; with any other, the decoder starts over
      const d = this.decoding;
      const decoded = d !== undefined && d.version === msg.version && d.buffer.length === msg.total;
      this.buffer = decoded ? d.buffer : this.bufferFor(msg.total);
      if (!decoded) this.decoding = undefined;
    }
    if (msg.offset !== this.next || this.buffer?.length !== msg.total) {
      throw new DptrainError('E_PROTOCOL_SCHEMA', `weights_bucket of version ${msg.version}: offset ${msg.offset}, expected ${this.next} of ${msg.total}`);
    }
    const inPlace = msg.weights.buffer === this.buffer.buffer && msg.weights.byteOffset === this.buffer.byteOffset + msg.offset * 4;
    if (!inPlace) this.buffer.set(msg.weights, msg.offset);
    this.next = end;
    if (end < msg.total) return undefined;
    const done = this.buffer;
    if (this.decoding?.buffer === done) this.decoding = undefined;
    this.buffer = undefined;
    this.next = 0;
    this.returned.push(done);
    return done;
  }

  /** An array of `total` floats to fill: an unfinished one, the one returned two versions ago, or a new one. */
  private bufferFor(total: number): Float32Array {
    if (this.buffer?.length === total) return this.buffer; // a superseded version that never completed
    if (this.returned.some((r) => r.length !== total)) this.returned.length = 0; // another size (a new phase): none to reuse
    if (this.returned.length >= 2) return this.returned.shift()!;
    // not zero-filled: every bucket writes its part
    return new Float32Array(Buffer.allocUnsafeSlow(total * 4).buffer, 0, total);
  }
}
