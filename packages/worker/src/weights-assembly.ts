import { DptrainError, type MessageOf } from '@dptrain/core';

/**
 * Puts together the weights that the coordinator sends bucket by bucket (`weights_bucket`, in order, as its
 * optimizer finishes each range): `add` copies a bucket in and returns the whole vector once its last bucket is in.
 * A bucket of a newer version starts over (the older one was superseded); one out of order is refused.
 */
export class WeightsAssembly {
  private version = -1;
  private next = 0;
  private buffer: Float32Array | undefined;

  add(msg: MessageOf<'weights_bucket'>): Float32Array | undefined {
    const end = msg.offset + msg.weights.length;
    if (end > msg.total) {
      throw new DptrainError('E_PROTOCOL_SCHEMA', `weights_bucket of version ${msg.version}: [${msg.offset}, ${end}) runs past its total of ${msg.total}`);
    }
    if (msg.version !== this.version || msg.offset === 0) {
      this.version = msg.version;
      this.next = 0;
      // a fresh array each version (the replica may keep the last one), not zero-filled: every bucket writes its part
      this.buffer = new Float32Array(Buffer.allocUnsafeSlow(msg.total * 4).buffer, 0, msg.total);
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
    return done;
  }
}
