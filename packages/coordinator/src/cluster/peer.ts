import type { WebSocket } from 'ws';
import {
  CLOSE_CODES,
  DptrainError,
  encodeMessage,
  type ClientRole,
  type DptrainErrorCode,
  type MessageOf,
  type Outgoing,
  type WorkerInfo,
} from '@dptrain/core';

/** Connection states of a peer, in order ('liveness': a worker's heartbeat thread, see liveness.ts). */
export type PeerState = 'hello' | 'auth' | 'join' | 'joined' | 'observing' | 'liveness' | 'shard' | 'closed';

/** Raised on requests outstanding to a worker that is lost (E_WORKER_LOST). */
export class WorkerLostError extends DptrainError {
  constructor(
    readonly workerId: string,
    readonly reason: string,
  ) {
    super('E_WORKER_LOST', `worker ${workerId} lost: ${reason}`);
    this.name = 'WorkerLostError';
  }
}

/** Raised on a request that got no answer within its deadline (E_TIMEOUT; the worker is then dropped: see ClusterExecutor). */
export class DeadlineError extends DptrainError {
  constructor(
    readonly workerId: string,
    readonly what: string,
    readonly deadlineMs: number,
  ) {
    super('E_TIMEOUT', `worker ${workerId}: no answer to ${what} within its deadline of ${Math.round(deadlineMs)} ms`);
    this.name = 'DeadlineError';
  }
}

type ReplyType = 'phase_ready' | 'gradients' | 'predictions' | 'weights_ack' | 'shard_seeded' | 'shard_reduced' | 'shard_updated' | 'shard_state_reply';

interface Pending {
  type: ReplyType;
  resolve: (msg: never) => void;
  reject: (err: Error) => void;
  timer?: ReturnType<typeof setTimeout>;
}

/** One WebSocket connection to the coordinator: a worker or an observer, before or after authentication. */
export class Peer {
  state: PeerState = 'hello';
  role: ClientRole | undefined;
  /** Connection id until the worker is accepted, then its worker id ("w1", ...). */
  id: string;
  info: WorkerInfo | undefined;
  nonce: Uint8Array | undefined;
  /** The nonce the client sent in its hello (the coordinator signs it to prove it knows the token). */
  clientNonce: Uint8Array | undefined;
  lastSeen: number;
  bytesIn = 0;
  bytesOut = 0;
  /** Dispatch order: when the worker joined. */
  readonly seq: number;
  private nextRequestId = 1;
  private readonly pending = new Map<string, Pending>();
  /** Where the `grad_bucket` frames of each outstanding step request go (requestStepPart). */
  private readonly bucketSinks = new Map<number, (msg: MessageOf<'grad_bucket'>) => void>();
  private closedReason: string | undefined;

  constructor(
    readonly ws: WebSocket,
    connId: string,
    seq: number,
    now: number,
    /** Remote address of the connection ('' when unknown). */
    readonly address = '',
  ) {
    this.id = connId;
    this.seq = seq;
    this.lastSeen = now;
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  /** Sends a message, an encoded frame, or a frame's fragments (as received: one WebSocket message, not copied). */
  send(message: Outgoing | Buffer | Buffer[]): void {
    if (this.closed) return;
    if (Array.isArray(message)) {
      message.forEach((f, i) => {
        this.bytesOut += f.length;
        this.ws.send(f, { binary: true, fin: i === message.length - 1 });
      });
      return;
    }
    const frame = Buffer.isBuffer(message) ? message : encodeMessage(message);
    this.bytesOut += frame.length;
    this.ws.send(frame);
  }

  /**
   * Sends a request and resolves with the reply of type `type` carrying the same id. With `deadlineMs`, it
   * rejects with a DeadlineError when no reply came in time (a reply after that is not waited for: it never
   * settles anything).
   */
  request<T extends ReplyType>(
    type: T,
    message: Outgoing | Buffer | Buffer[] | ((id: number) => Outgoing),
    key?: string,
    deadlineMs?: number,
  ): Promise<MessageOf<T>> {
    if (this.closed) return Promise.reject(new WorkerLostError(this.id, this.closedReason ?? 'closed'));
    const id = this.nextRequestId++;
    const msg = typeof message === 'function' ? message(id) : message;
    const k = `${type}:${key ?? id}`;
    return new Promise<MessageOf<T>>((resolve, reject) => {
      const pending: Pending = { type, resolve: resolve as (m: never) => void, reject };
      if (deadlineMs !== undefined && Number.isFinite(deadlineMs)) {
        pending.timer = setTimeout(
          () => {
            if (this.pending.get(k) !== pending) return;
            this.pending.delete(k);
            reject(new DeadlineError(this.id, `${type === 'gradients' ? 'step' : type} request ${key ?? id}`, deadlineMs));
          },
          Math.max(1, deadlineMs),
        );
        pending.timer.unref?.();
      }
      this.pending.set(k, pending);
      this.send(msg);
    });
  }

  /** Hands a reply to its request; false if nothing waits for it. */
  settle(type: ReplyType, key: string, msg: MessageOf<ReplyType>): boolean {
    const k = `${type}:${key}`;
    const p = this.pending.get(k);
    if (!p) return false;
    this.pending.delete(k);
    clearTimeout(p.timer);
    p.resolve(msg as never);
    return true;
  }

  /** Hands the `grad_bucket` frames of step request `id` to `sink` until the returned function is called. */
  receiveBuckets(id: number, sink: (msg: MessageOf<'grad_bucket'>) => void): () => void {
    this.bucketSinks.set(id, sink);
    return () => this.bucketSinks.delete(id);
  }

  /** Hands a gradient bucket to its request (its sink throws a DptrainError on a bad one); false if nothing waits for it. */
  bucket(msg: MessageOf<'grad_bucket'>): boolean {
    const sink = this.bucketSinks.get(msg.id);
    if (!sink) return false;
    sink(msg);
    return true;
  }

  /** Fails every outstanding request with `err` (the worker reported it could not do them). */
  failPending(err: Error): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
  }

  hasPending(): boolean {
    return this.pending.size > 0;
  }

  /** Marks the peer closed, fails its outstanding requests and closes the socket. */
  close(reason: string, code: number = CLOSE_CODES.normal): void {
    if (this.closed) return;
    this.state = 'closed';
    this.closedReason = reason;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new WorkerLostError(this.id, reason));
    }
    this.pending.clear();
    try {
      this.ws.close(code, reason.slice(0, 120));
    } catch {
      this.ws.terminate();
    }
    setTimeout(() => this.ws.terminate(), 1000).unref();
  }
}

/**
 * A worker answered a request with an error (e.g. an unreadable image): counted against the task. Its code is the
 * one the worker sent: a dptrain code of the worker's (E_DATA_IMAGE, ...), or E_WORKER for an unexpected failure.
 */
export class WorkerTaskError extends DptrainError {
  constructor(
    readonly workerId: string,
    code: string,
    message: string,
  ) {
    // the worker sends its DptrainError's code, or E_WORKER (packages/worker: same protocol version as ours)
    super(code as DptrainErrorCode, `worker ${workerId} failed a task [${code}]: ${message}`);
    this.name = 'WorkerTaskError';
  }
}
