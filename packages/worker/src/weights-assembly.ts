import { DptrainError, type MessageOf } from '@dptrain/core';

/**
 * Puts together the weights that the coordinator sends bucket by bucket (`weights_bucket`, in order, as its
 * optimizer finishes each range): `add` copies a bucket in and returns the whole vector once its last bucket is in.
 * A bucket of a newer version starts over (the older one was superseded); one out of order is refused.
 *
 * Two arrays take turns: the one returned for a version is left alone while the next version is put together, and
 * is refilled by the version after that (a replica keeps at most the last weights it was given; reusing warm memory
 * saves a fresh 37 MB allocation, and its page faults, every step).
 */
export class WeightsAssembly {
  private version = -1;
  private next = 0;
  private buffer: Float32Array | undefined;
  /** The arrays returned for the last two versions, oldest first. */
  private readonly returned: Float32Array[] = [];

  add(msg: MessageOf<'weights_bucket'>): Float32Array | undefined {
    const end = msg.offset + msg.weights.length;
    if (end > msg.total) {
      throw new DptrainError('E_PROTOCOL_SCHEMA', `weights_bucket of version ${msg.version}: [${msg.offset}, ${end}) runs past its total of ${msg.total}`);
    }
    if (msg.version !== this.version || msg.offset === 0) {
      this.version = msg.version;
      this.next = 0;
      this.buffer = this.bufferFor(msg.total);
    }
    if (msg.offset !== this.next || this.buffer?.length !== msg.total) {
      throw new DptrainError('E_PROTOCOL_SCHEMA', `weights_bucket of version ${msg.version}: offset ${msg.offset}, expected ${this.next} of ${msg.total}`);
    }
    this.buffer.set(msg.weights, msg.offset);
    this.next = end;
    if (end < msg.total) return undefined;
    const done = this.buffer;
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
