import { DptrainError, unpackGradients, type MessageOf } from '@dptrain/core';

/**
 * The gradient of one step request, put together from its `grad_bucket` frames as they arrive (in order, each checked:
 * offset, length, total, dtype, finite values, naming the worker and the element). Each bucket is handed on at once
 * (`onBucket`: an agent's streamed merge) as a view of the assembled vector; `finish` returns the whole vector once
 * the reply came and every bucket is in.
 */
export class GradientAssembly {
  private values: Float32Array | undefined;
  private next = 0;

  constructor(
    /** The worker, for error messages. */
    private readonly who: string,
    /** Floats of the phase's trainable vector. */
    private readonly size: number,
    private readonly onBucket?: (offset: number, values: Float32Array) => void,
    /** Where the vector's memory comes from. Default: a fresh array. */
    private readonly buffers?: GradientBuffers,
  ) {}

  add(msg: MessageOf<'grad_bucket'>): void {
    const n = msg.gradients.length;
    if (msg.total !== this.size || msg.offset !== this.next || n === 0 || msg.offset + n > this.size) {
      throw new DptrainError(
        'E_GRADIENT_SHAPE',
        `worker ${this.who}: gradient bucket [${msg.offset}, ${msg.offset + n}) of ${msg.total}, expected one from ${this.next} of ${this.size}`,
      );
    }
    const g = unpackGradients(msg, n, this.who, msg.offset);
    // not zero-filled: every bucket writes its part, and finish() refuses a vector with one missing
    this.values ??= this.buffers?.take(this.size) ?? uninitialized(this.size);
    this.values.set(g, msg.offset);
    this.next += n;
    this.onBucket?.(msg.offset, this.values.subarray(msg.offset, this.next));
  }

  /** The whole gradient; E_GRADIENT_SHAPE when its buckets do not cover it. */
  finish(): Float32Array {
    if (this.next !== this.size || !this.values)
      throw new DptrainError('E_GRADIENT_SHAPE', `worker ${this.who}: its gradient buckets cover ${this.next} of ${this.size} values`);
    return this.values;
  }
}

/** A float vector whose memory is not zeroed (every element gets written before it is read). */
function uninitialized(size: number): Float32Array {
  return new Float32Array(Buffer.allocUnsafeSlow(size * 4).buffer, 0, size);
}

/**
 * The memory of the gradient assemblies, reused from step to step (warm pages: no fresh 37 MB, and its page faults,
 * per worker and step). `nextStep` at each step's start frees what was handed out two steps before: a step's
 * gradients are merged and applied before the next step's parts come in, so the step before the last is done with.
 */
export class GradientBuffers {
  private free: Float32Array[] = [];
  private current: Float32Array[] = [];
  private previous: Float32Array[] = [];

  nextStep(): void {
    this.free.push(...this.previous);
    this.previous = this.current;
    this.current = [];
  }

  take(size: number): Float32Array {
    const at = this.free.findIndex((b) => b.length === size);
    const b = at >= 0 ? this.free.splice(at, 1)[0]! : uninitialized(size);
    if (this.free.length > 64) this.free = []; // another phase's sizes: let them go
    this.current.push(b);
    return b;
  }
}
