import { DptrainError } from '@dptrain/core/errors';
import { PROTOCOL_VERSION, decodeWireGradients, encodeMessage, packGradients, type MessageOf, type Outgoing } from '@dptrain/core/protocol';
import type { RunConfig } from '@dptrain/core';
import { l2Norm } from '@dptrain/core';
import { ShardLinks } from './shard-links.js';
import type { JoinFields, MessageHandlers } from './upstream.js';
import type { GradientOut } from './gradient-stream.js';

export interface ShardedSenderOptions {
  /** Shared secret of the run (the shards are authenticated with it, both ways). */
  token: string;
  /** PEM CA file trusted for the shards' wss://. Default: the system CAs. */
  ca?: string | undefined;
  log: (message: string) => void;
}

/**
 * The sender's side of the sharded summation service, around any handlers (a plain worker's replica, or an agent's
 * local cluster): it follows the coordinator's `shard_map`, and for a step marked `sharded` it lets the handlers
 * compute the whole fp32 gradient, sends range k of it (in the step's wire precision) to shard k, and answers the
 * coordinator with the figures and the norm only. A step that names a `weightsVersion` first waits for all the
 * shards' ranges of those weights and hands them to the handlers as one `weights` message. The shard protocol does
 * not care whether the handlers are a worker or an agent.
 */
export class ShardedSender implements MessageHandlers {
  private links: ShardLinks | undefined;
  /** The newest weights version handed to the handlers (from the coordinator or the shards); -1: not said. */
  private version = -1;

  constructor(
    private readonly inner: MessageHandlers,
    private readonly opts: ShardedSenderOptions,
  ) {}

  async prepare(config: RunConfig, workerId: string): Promise<JoinFields> {
    this.links?.close();
    this.links = new ShardLinks({ token: this.opts.token, workerId, log: this.opts.log, ...(this.opts.ca ? { ca: this.opts.ca } : {}) });
    return this.inner.prepare(config, workerId);
  }

  welcome(msg: MessageOf<'welcome'>): Promise<void> {
    return this.inner.welcome(msg);
  }

  phase(msg: MessageOf<'phase'>): Promise<Outgoing<'phase_ready'>> {
    return this.inner.phase(msg);
  }

  weights(msg: MessageOf<'weights'>, frame: Buffer[]): Promise<void> {
    this.version = Math.max(this.version, msg.version);
    return this.inner.weights(msg, frame);
  }

  weightsBucket(msg: MessageOf<'weights_bucket'>, frame: Buffer[]): Promise<void> {
    if (msg.offset + msg.weights.length === msg.total) this.version = Math.max(this.version, msg.version); // the last bucket
    return this.inner.weightsBucket(msg, frame);
  }

  /** The coordinator named the shards of this run (the only ones whose weights are taken). */
  shardMap(msg: MessageOf<'shard_map'>): void {
    this.ready.configure(msg);
    this.opts.log(`shards of this run: ${msg.shards.map((x) => `${x.id} ${x.url} [${x.start}, ${x.end})`).join(', ')}`);
  }

  async step(msg: MessageOf<'step'>, out: GradientOut): Promise<Outgoing<'gradients'>> {
    if (msg.weightsVersion !== undefined && this.version < msg.weightsVersion) {
      // the weights of this step come from the shards, over other connections: all their ranges first
      const got = await this.ready.weightsOf(msg.weightsVersion);
      const weights: Outgoing<'weights'> = { type: 'weights', version: got.version, weights: got.weights, ack: false };
      await this.weights({ v: PROTOCOL_VERSION, ...weights }, [encodeMessage(weights)]);
    }
    if (!msg.sharded) return this.inner.step(msg, out);
    const precision = msg.precision ?? 'fp32';
    // the values the coordinator would have decoded from this precision (fp16 / bf16 round once, here)
    const wire = (g: Float32Array): Float32Array => (precision === 'fp32' ? g : decodeWireGradients(precision, packGradients(g, precision).gradients));
    const links = this.ready;
    await links.connectAll();
    // handlers that stream (an agent) send each merged bucket on to its shards at once; the norm is of the whole. A
    // shard link that closes meanwhile fails the step once the handlers are done (E_SHARD_LOST: not their fault)
    let streamed: Float32Array | undefined;
    let lost: unknown;
    const whole = await this.inner.step({ ...msg, precision: 'fp32' }, (offset, total, values) => {
      if (lost !== undefined) return;
      streamed ??= new Float32Array(total);
      const v = wire(values);
      streamed.set(v, offset);
      try {
        links.sendPiece(msg.id, offset, v, precision);
      } catch (err) {
        lost = err;
      }
    });
    if (lost !== undefined) throw lost;
    let g = streamed ?? new Float32Array(0);
    if (whole.gradients.length > 0) {
      g = wire(whole.gradients as Float32Array);
      await links.sendRanges(msg.id, g, precision);
    }
    return { ...whole, dtype: 'fp32', gradients: new Float32Array(0), norm: l2Norm(g) };
  }

  predict(msg: MessageOf<'predict'>): Promise<Outgoing<'predictions'>> {
    return this.inner.predict(msg);
  }

  blobDestination(header: Readonly<Record<string, unknown>>, key: string, bytes: number): Uint8Array | undefined {
    return this.inner.blobDestination?.(header, key, bytes);
  }

  async hostShard(): Promise<void> {
    if (this.inner.hostShard) await this.inner.hostShard();
    else this.opts.log('the coordinator asked for a shard beside this worker: only an agent (--nproc-per-node) starts one; ignored');
  }

  async dispose(): Promise<void> {
    this.links?.close();
    await this.inner.dispose();
  }

  private get ready(): ShardLinks {
    if (!this.links) throw new DptrainError('E_PROTOCOL_SCHEMA', 'a shard message before the join');
    return this.links;
  }
}
