import { DptrainError } from '@dptrain/core/errors';
import { CLOSE_CODES, packGradients, type MessageOf } from '@dptrain/core/protocol';
import { connectAndAuth, type AuthedConnection } from '@dptrain/client';

export interface ShardLinksOptions {
  /** Shared secret of the run (the shards prove they know it too). */
  token: string;
  /** PEM CA file trusted for the shards' wss:// (the coordinator's). Default: the system CAs. */
  ca?: string;
  /** This worker's id at the coordinator (the shards key its gradient ranges by it). */
  workerId: string;
  /** How long a step waits for weights of the version it needs, in ms. Default 120000. */
  waitMs?: number;
  /** How long opening and authenticating a link may take, in ms. Default 30000. */
  connectTimeoutMs?: number;
  /** Progress lines. */
  log: (message: string) => void;
}

interface Link {
  id: string;
  url: string;
  start: number;
  end: number;
  conn?: AuthedConnection;
  connecting?: Promise<AuthedConnection>;
}

interface Assembly {
  weights: Float32Array;
  filled: Set<string>;
}

/**
 * A sender's links to the shards the coordinator named in its last `shard_map` (and to no other: weights are
 * accepted only from those links, for the range each one was named with). It sends each shard its range of a
 * step's gradient, and assembles the weights ranges the shards send into whole weights of one version.
 */
export class ShardLinks {
  private links: Link[] = [];
  private size = 0;
  private generation = -1;
  private readonly assembling = new Map<number, Assembly>();
  private latest = -1;
  private latestWeights: Float32Array | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(private readonly opts: ShardLinksOptions) {}

  /** Follows a `shard_map`: links to its shards (opened now, in the background), the old ones closed. */
  configure(map: MessageOf<'shard_map'>): void {
    if (map.generation === this.generation) return;
    this.close();
    this.generation = map.generation;
    this.size = map.size;
    this.links = map.shards.map((s) => ({ id: s.id, url: s.url, start: s.start, end: s.end }));
    for (const l of this.links) void this.connect(l).catch((err: Error) => this.opts.log(`shard ${l.id} at ${l.url}: ${err.message}`));
  }

  /**
   * Sends range k of gradient `g` (of step request `request`) to shard k, in the wire precision asked (fp32, fp16, bf16). A shard that cannot
   * be reached fails it with E_SHARD_LOST (the coordinator rolls the step back; this worker did nothing wrong).
   */
  async sendRanges(request: number, g: Float32Array, precision: MessageOf<'grad_range'>['dtype']): Promise<void> {
    if (g.length !== this.size) throw new DptrainError('E_GRADIENT_SHAPE', `gradient of ${g.length} values, the shard map covers ${this.size}`);
    await this.connectAll();
    this.sendPiece(request, 0, g, precision);
  }

  /** Opens (or checks) the link to every shard of the map; E_SHARD_LOST names one that cannot be reached. */
  async connectAll(): Promise<void> {
    await Promise.all(
      this.links.map((l) =>
        this.connect(l).catch((err: Error) => {
          throw new DptrainError('E_SHARD_LOST', `shard ${l.id} at ${l.url} cannot be reached: ${err.message}`);
        }),
      ),
    );
  }

  /**
   * Sends the elements [offset, offset + piece.length) of a step's gradient, each shard the part of them in its range
   * (a streamed bucket, or the whole gradient), once the links are open (connectAll); a shard gets its range's
   * pieces in order. E_SHARD_LOST when a link closed meanwhile.
   */
  sendPiece(request: number, offset: number, piece: Float32Array, precision: MessageOf<'grad_range'>['dtype']): void {
    const end = offset + piece.length;
    for (const l of this.links) {
      const lo = Math.max(offset, l.start);
      const hi = Math.min(end, l.end);
      if (hi <= lo) continue;
      const c = l.conn;
      if (!c || c.ws.readyState !== c.ws.OPEN) throw new DptrainError('E_SHARD_LOST', `shard ${l.id} at ${l.url}: its link closed`);
      c.send({ type: 'grad_range', request, offset: lo, ...packGradients(piece.subarray(lo - offset, hi - offset), precision) });
    }
  }

  /** The whole weights of `version` once every shard's range of it is in (or the newest complete ones, if newer). */
  async weightsOf(version: number): Promise<{ version: number; weights: Float32Array }> {
    const deadline = Date.now() + (this.opts.waitMs ?? 120_000);
    while (this.latest < version) {
      if (Date.now() > deadline)
        throw new DptrainError('E_SHARD_LOST', `no weights of version ${version} from the shards within ${this.opts.waitMs ?? 120_000} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, 1000);
        function done(): void {
          clearTimeout(t);
          resolve();
        }
        this.waiters.add(done);
      });
    }
    return { version: this.latest, weights: this.latestWeights! };
  }

  /** The version of the newest complete weights from the shards (-1: none). */
  get latestVersion(): number {
    return this.latest;
  }

  close(): void {
    for (const l of this.links) {
      l.conn?.ws.close(CLOSE_CODES.normal, 'shard map changed');
      void l.connecting?.then((c) => c.ws.close(CLOSE_CODES.normal, 'shard map changed')).catch(() => undefined);
    }
    this.links = [];
    this.assembling.clear();
  }

  private connect(l: Link): Promise<AuthedConnection> {
    if (l.conn && l.conn.ws.readyState === l.conn.ws.OPEN) return Promise.resolve(l.conn);
    if (l.connecting) return l.connecting;
    const p = connectAndAuth({
      url: l.url,
      token: this.opts.token,
      role: 'sender',
      name: this.opts.workerId,
      timeoutMs: this.opts.connectTimeoutMs ?? 30_000,
      ...(this.opts.ca ? { ca: this.opts.ca } : {}),
    }).then(
      (c) => {
        l.connecting = undefined;
        if (!this.links.includes(l)) {
          c.ws.close(CLOSE_CODES.normal, 'shard map changed');
          return c;
        }
        l.conn = c;
        c.onMessage(
          (msg) => {
            if (msg.type === 'weights_range') this.onWeights(l, msg);
          },
          (err) => {
            this.opts.log(`bad frame from shard ${l.id}: ${err.message}`);
            c.ws.terminate();
          },
        );
        c.ws.on('close', () => {
          if (l.conn === c) l.conn = undefined;
        });
        return c;
      },
      (err: unknown) => {
        l.connecting = undefined;
        throw err;
      },
    );
    l.connecting = p;
    return p;
  }

  private onWeights(l: Link, msg: MessageOf<'weights_range'>): void {
    if (msg.offset !== l.start || msg.weights.length !== l.end - l.start) {
      this.opts.log(`shard ${l.id} sent weights ${msg.offset}..${msg.offset + msg.weights.length}, it was named for ${l.start}..${l.end}: ignored`);
      return;
    }
    if (msg.version <= this.latest) return;
    let a = this.assembling.get(msg.version);
    if (!a) {
      a = { weights: new Float32Array(this.size), filled: new Set() };
      this.assembling.set(msg.version, a);
    }
    a.weights.set(msg.weights, l.start);
    a.filled.add(l.id);
    if (a.filled.size < this.links.length) return;
    this.latest = msg.version;
    this.latestWeights = a.weights;
    for (const v of [...this.assembling.keys()]) if (v <= msg.version) this.assembling.delete(v);
    for (const w of [...this.waiters]) {
      this.waiters.delete(w);
      w();
    }
  }
}
