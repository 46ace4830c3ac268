import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import {
  CLOSE_CODES,
  DptrainError,
  EventBus,
  closeCodeFor,
  computeBaseHash,
  decodeMessage,
  isDptrainError,
  resolveProtocolOptions,
  systemClock,
  type Clock,
  type Message,
  type ProtocolOptions,
  type ResolvedProtocolOptions,
  type RunConfig,
  type RunEvent,
} from '@dptrain/core';
import { Peer, WorkerLostError, WorkerTaskError } from './peer.js';
import { LivenessLinks, LivenessMonitor } from './liveness.js';
import { AdmissionGuard, addressOf, type AdmissionOptions, type AdmissionRefusal } from './admission.js';
import { plainTextExposureWarning } from './exposure.js';
import { maxPayloadOf, setMaxPayload } from '@dptrain/client';
import { RejectionLog, type RejectionLogOptions } from './rejections.js';
import type { RunState } from './run-sync.js';
import { Handshake } from './handshake.js';
import { ObserverHub } from './observers.js';
import { httpStatusListener, type HttpHandler } from './http-status.js';
import { ShardRegistry } from './shard-registry.js';

export type { HttpHandler };

export interface ClusterServerOptions {
  /** Interface to listen on. Default '127.0.0.1'. */
  host?: string;
  /** Port to listen on; 0 picks a free one. Default 0. */
  port?: number;
  /** Shared secret for the challenge-response. Required (an empty string is refused). */
  token: string;
  /** Run configuration sent to every worker on join. */
  config: RunConfig;
  /** PEM certificate and key files: serve wss:// instead of ws://. Default: none (plain ws). */
  tls?: { cert: string; key: string };
  /** Protocol limits and timings (see ProtocolOptions for defaults). */
  protocol?: ProtocolOptions;
  /** Event bus the run emits on; the server adds worker/frame events and forwards all events to observers. Default: a new bus. */
  bus?: EventBus;
  /** Clock for heartbeats and event times. Default: systemClock. */
  clock?: Clock;
  /**
   * Hash of the frozen base every worker must report. Default: computed by `listen()` from `config` (the backbone
   * built and hashed as a worker does it), never taken from a worker.
   */
  baseHash?: string;
  /** Hash of the data set every worker must report. Default: the first joined worker's hash becomes the reference. */
  datasetHash?: string;
  /** Extra HTTP routes, tried in order before the built-in `GET /status`. Default: none. */
  httpHandlers?: HttpHandler[];
  /** Events kept for observers that connect later (oldest dropped first). Default 20000. */
  maxEventHistory?: number;
  /** Rejection events kept for observers, in a history of their own. Default 500. */
  maxRejectionHistory?: number;
  /** Caps on unauthenticated connections, the pre-upgrade timeout and allowed Origins (see AdmissionOptions). */
  admission?: AdmissionOptions;
  /** Per-address rate limit of rejection events (see RejectionLogOptions). */
  rejectionLog?: RejectionLogOptions;
}

/**
 * The coordinator's WebSocket server and its connection registry: every connection as a Peer, the joined
 * workers in join order, rejections (a `frame_rejected` event, an `error` to the peer, a close code from
 * core's close-codes.ts) and drops. The parts: `Handshake` (hello, challenge, auth, join checks, welcome), liveness
 * (`LivenessLinks`, `LivenessMonitor`: heartbeats and silence), `ObserverHub` (event history and fan-out to
 * dashboards), http-status.ts (`GET /status` and extra routes), admission.ts (connection caps). Work
 * distribution and the run state live in ClusterExecutor.
 */
export class ClusterServer {
  readonly bus: EventBus;
  readonly options: ResolvedProtocolOptions;
  private readonly clock: Clock;
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly peers = new Set<Peer>();
  private readonly workerList = new Map<string, Peer>();
  private readonly observers: ObserverHub;
  private readonly handshake: Handshake;
  private readonly monitor: LivenessMonitor;
  private readonly admission: AdmissionGuard;
  private readonly rejections: RejectionLog;
  private readonly sockets = new WeakMap<Peer, Socket>();
  private readonly joinWaiters = new Set<(peer: Peer) => void>();
  private readonly lostListeners = new Set<(peer: Peer, reason: string) => void>();
  private readonly liveness = new LivenessLinks();
  private connSeq = 0;
  private closing = false;
  private readonly unsubscribe: () => void;
  private runState: Readonly<RunState> = { step: 0, phase: null, weights: null, version: -1 };
  /** Counts by reason code of the frames rejected so far. */
  readonly rejected = new Map<string, number>();
  /** Shards of the sharded summation service that joined (role `shard`). */
  readonly shards = new ShardRegistry();

  /** The run configuration sent to every worker on join. */
  get config(): RunConfig {
    return this.opts.config;
  }

  constructor(private readonly opts: ClusterServerOptions) {
    if (!opts.token) throw new DptrainError('E_AUTH', 'a shared token is required (--token or DPTRAIN_TOKEN)');
    this.options = resolveProtocolOptions(opts.protocol);
    this.clock = opts.clock ?? systemClock;
    this.bus = opts.bus ?? new EventBus();
    this.observers = new ObserverHub({ maxRunEvents: opts.maxEventHistory, maxRejections: opts.maxRejectionHistory });
    this.handshake = new Handshake(
      {
        token: opts.token,
        config: opts.config,
        options: this.options,
        liveness: this.liveness,
        observers: this.observers,
        runState: () => this.runState,
        authenticated: (peer) => {
          // no longer counted against the caps, and the large frame limit applies from now on
          const socket = this.sockets.get(peer);
          if (socket) this.admission.authenticated(socket);
          setMaxPayload(peer.ws, this.options.maxPayload);
        },
        joined: (peer) => this.joined(peer),
        shardJoined: (peer) => {
          this.shards.add(peer);
          this.emit({ type: 'log', time: this.clock.now(), level: 'info', message: `shard ${peer.id} joined from ${peer.address}` });
        },
      },
      { baseHash: opts.baseHash, datasetHash: opts.datasetHash },
    );
    this.monitor = new LivenessMonitor({
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
      lostAfterMs: this.options.lostAfterMs,
      clock: this.clock,
      peers: () => this.peers,
      lost: (peer, reason) => this.drop(peer, reason, CLOSE_CODES.silent),
    });
    this.rejections = new RejectionLog((e) => this.emit(e), this.clock, opts.rejectionLog);
    this.admission = new AdmissionGuard(opts.admission ?? {}, (r) => this.refused(r));
    const handler = httpStatusListener(opts.httpHandlers ?? [], () => ({
      step: this.runState.step,
      phase: this.runState.phase,
      workers: this.workers.map((w) => ({ ...w.info, bytesIn: w.bytesIn, bytesOut: w.bytesOut })),
      observers: this.observers.size,
      rejected: Object.fromEntries(this.rejected),
    }));
    this.http = opts.tls ? createHttpsServer({ cert: readFileSync(opts.tls.cert), key: readFileSync(opts.tls.key) }, handler) : createHttpServer(handler);
    this.admission.attach(this.http);
    // Until a peer authenticates, ws refuses any frame over the pre-auth limit from its header, before buffering
    // the payload; the limit is raised to maxPayload once the challenge is passed (see setMaxPayload).
    this.wss = new WebSocketServer({
      server: this.http,
      maxPayload: Math.min(this.options.preAuthMaxPayload, this.options.maxPayload),
      perMessageDeflate: false,
      verifyClient: (info: { origin?: string; req: IncomingMessage }, done: (ok: boolean, code?: number, message?: string) => void) => {
        if (this.admission.originAllowed(info.origin)) return done(true);
        this.refused({
          address: addressOf(info.req.socket),
          code: 'E_ORIGIN',
          reason: `WebSocket upgrade with Origin '${String(info.origin).slice(0, 200)}' refused (a browser page may not connect; see AdmissionOptions.allowedOrigins)`,
        });
        done(false, 403, 'E_ORIGIN: browser origins may not connect');
      },
    });
    this.wss.on('connection', (ws, req) => this.onConnection(ws, req));
    this.unsubscribe = this.bus.on((e) => this.observers.publish(e));
  }

  /** Starts listening; resolves with the URL workers connect to. */
  async listen(): Promise<string> {
    if (!this.handshake.hasBaseHash) {
      const base = await computeBaseHash(this.opts.config, (m) => this.emit({ type: 'log', time: this.clock.now(), level: 'warn', message: m }));
      this.handshake.setBaseHash(base.hash, `computed by the coordinator from its own copy (weights: ${base.weightsSource})`);
    }
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this.opts.port ?? 0, this.opts.host ?? '127.0.0.1', () => {
        this.http.off('error', reject);
        resolve();
      });
    });
    this.monitor.start();
    this.rejections.start();
    const warning = plainTextExposureWarning(this.address.address, !!this.opts.tls);
    if (warning) this.emit({ type: 'log', time: this.clock.now(), level: 'warn', message: `coordinator ${warning}` });
    return this.url;
  }

  get address(): AddressInfo {
    return this.http.address() as AddressInfo;
  }

  get url(): string {
    const a = this.address;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return `${this.opts.tls ? 'wss' : 'ws'}://${host}:${a.port}`;
  }

  /** Joined, live workers in join order. */
  get workers(): Peer[] {
    return [...this.workerList.values()].filter((p) => !p.closed).sort((a, b) => a.seq - b.seq);
  }

  /** Hashes every worker must match (the base hash is set by `listen()`). */
  get referenceHashes(): { baseHash?: string; datasetHash?: string } {
    return this.handshake.referenceHashes;
  }

  emit(event: RunEvent): void {
    this.bus.emit(event);
  }

  /** Resolves when a worker joins (or after `timeoutMs`). */
  waitForJoin(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.joinWaiters.delete(done);
        resolve();
      };
      const t = setTimeout(done, timeoutMs);
      this.joinWaiters.add(done);
    });
  }

  /** The run's state, owned by the executor (see RunSync): read for every welcome and `GET /status`. */
  get state(): Readonly<RunState> {
    return this.runState;
  }

  /** Reads the run's state from `state` from now on (the executor calls it with the state it owns). */
  useRunState(state: Readonly<RunState>): void {
    this.runState = state;
  }

  /** A worker passed the join checks and was welcomed: registered, announced, waiters woken. */
  private joined(peer: Peer): void {
    this.workerList.set(peer.id, peer);
    this.emit({ type: 'worker_joined', time: this.clock.now(), worker: peer.info! });
    for (const w of [...this.joinWaiters]) w(peer);
  }

  /** Calls `listener` each time a worker completes its join (right after its welcome). */
  onWorkerJoined(listener: (peer: Peer) => void): () => void {
    this.joinWaiters.add(listener);
    return () => this.joinWaiters.delete(listener);
  }

  onWorkerLost(listener: (peer: Peer, reason: string) => void): () => void {
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  /** Rejects a frame of `peer`: logs the reason code as an event, tells the peer, drops it. */
  reject(peer: Peer, err: DptrainError | Error): void {
    const code = isDptrainError(err) ? err.code : 'E_PROTOCOL_SCHEMA';
    this.rejected.set(code, (this.rejected.get(code) ?? 0) + 1);
    const known = peer.role === 'worker' && peer.info ? peer.id : undefined;
    this.rejections.record(peer.address, code, err.message.slice(0, 500), known ?? peer.id);
    try {
      peer.send({ type: 'error', code, message: err.message.slice(0, 4000) });
    } catch {
      // the socket may already be gone
    }
    this.drop(peer, `${code}: ${err.message}`, closeCodeFor(code));
  }

  /** Closes a peer; a joined worker is reported lost and its outstanding requests fail. */
  drop(peer: Peer, reason: string, code: number = CLOSE_CODES.normal): void {
    if (peer.closed) return;
    const wasWorker = peer.state === 'joined' && !this.closing;
    const wasShard = peer.state === 'shard';
    peer.close(reason, code);
    if (wasShard) {
      if (!this.closing) this.emit({ type: 'log', time: this.clock.now(), level: 'warn', message: `shard ${peer.id} lost: ${reason.slice(0, 500)}` });
      this.shards.lost(peer, reason);
    }
    this.peers.delete(peer);
    this.observers.remove(peer);
    const link = this.liveness.forget(peer);
    if (link) this.drop(link, `its worker ${peer.id} is gone`);
    if (wasWorker) {
      this.workerList.delete(peer.id);
      this.emit({ type: 'worker_lost', time: this.clock.now(), id: peer.id, reason: reason.slice(0, 500) });
      for (const l of this.lostListeners) l(peer, reason);
    }
  }

  /** Closes every connection and the server; `bye: false` sends no `bye`, so workers reconnect to a restarted coordinator. */
  async close(opts: { bye?: boolean } = {}): Promise<void> {
    this.closing = true;
    this.monitor.stop();
    this.rejections.stop();
    this.admission.close();
    this.unsubscribe();
    for (const p of [...this.peers]) {
      try {
        if (opts.bye ?? true) p.send({ type: 'bye', reason: 'coordinator shutting down' });
      } catch {
        // ignore
      }
      this.drop(p, 'coordinator shutting down', CLOSE_CODES.goingAway);
    }
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeAllConnections?.();
  }

  // ---- internals ---------------------------------------------------------------------------

  /** A connection turned away before it could authenticate: counted and reported like a rejected frame. */
  private refused(r: AdmissionRefusal): void {
    this.rejected.set(r.code, (this.rejected.get(r.code) ?? 0) + 1);
    this.rejections.record(r.address, r.code, r.reason);
  }

  private onConnection(ws: WebSocket, req: IncomingMessage): void {
    const peer = new Peer(ws, `c${++this.connSeq}`, this.connSeq, this.clock.now(), addressOf(req.socket));
    this.sockets.set(peer, req.socket);
    this.peers.add(peer);
    const authTimer = setTimeout(() => {
      if (peer.state === 'hello' || peer.state === 'auth')
        this.reject(peer, new DptrainError('E_AUTH', `connection ${peer.id}: no authentication within ${this.options.authTimeoutMs} ms`));
    }, this.options.authTimeoutMs);
    const joinTimer = setTimeout(() => {
      if (peer.state === 'join') this.reject(peer, new DptrainError('E_TIMEOUT', `connection ${peer.id}: no join within ${this.options.joinTimeoutMs} ms`));
    }, this.options.joinTimeoutMs);
    authTimer.unref();
    joinTimer.unref();
    // fragments: a gradients frame sent in parts (header, blob) is decoded from its parts, not reassembled
    ws.binaryType = 'fragments';
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (peer.closed) return;
      const size = Array.isArray(data) ? data.reduce((a, b) => a + b.length, 0) : (data as Buffer | ArrayBuffer).byteLength;
      peer.bytesIn += size;
      peer.lastSeen = this.clock.now();
      try {
        const limit = peer.state === 'hello' || peer.state === 'auth' ? this.options.preAuthMaxPayload : this.options.maxPayload;
        if (!isBinary) throw new DptrainError('E_PROTOCOL_DECODE', 'text frame; the protocol is binary msgpack');
        const msg = decodeMessage(data as Buffer[], limit);
        this.onMessage(peer, msg);
      } catch (err) {
        this.reject(peer, err as Error);
      }
    });
    ws.on('error', (err: Error & { code?: string }) => {
      // ws reports an oversize frame as an error before closing with 1009
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH')
        this.reject(
          peer,
          new DptrainError(
            'E_PROTOCOL_OVERSIZE',
            `connection ${peer.id}: ${err.message} (limit ${maxPayloadOf(ws)} bytes${peer.state === 'hello' || peer.state === 'auth' ? ' before authentication' : ''})`,
          ),
        );
      else if (err.code?.startsWith('WS_ERR')) this.reject(peer, new DptrainError('E_PROTOCOL_DECODE', `connection ${peer.id}: ${err.message}`));
      else this.drop(peer, `socket error: ${err.message}`);
    });
    ws.on('close', () => {
      clearTimeout(authTimer);
      clearTimeout(joinTimer);
      this.drop(peer, 'connection closed');
    });
  }

  private onMessage(peer: Peer, msg: Message): void {
    if (msg.type === 'heartbeat' && peer.state === 'liveness') {
      const worker = this.liveness.beat(peer, this.clock.now());
      if (worker?.state === 'joined')
        this.emit({ type: 'worker_heartbeat', time: this.clock.now(), id: worker.id, bytesIn: worker.bytesIn, bytesOut: worker.bytesOut });
      return;
    }
    if (msg.type === 'heartbeat') {
      if (peer.state === 'joined') this.emit({ type: 'worker_heartbeat', time: this.clock.now(), id: peer.id, bytesIn: peer.bytesIn, bytesOut: peer.bytesOut });
      return;
    }
    if (msg.type === 'bye') {
      this.drop(peer, `worker said bye: ${msg.reason}`);
      return;
    }
    switch (peer.state) {
      case 'hello':
      case 'auth':
      case 'join':
        this.handshake.onMessage(peer, msg);
        return;
      case 'joined': {
        this.onWorkerReply(peer, msg);
        return;
      }
      case 'shard':
        this.shards.onMessage(peer, msg);
        return;
      case 'observing':
        throw new DptrainError('E_PROTOCOL_SCHEMA', `observer ${peer.id}: observers are read-only, got '${msg.type}'`);
      case 'liveness': {
        if (msg.type !== 'attach')
          throw new DptrainError('E_PROTOCOL_SCHEMA', `liveness connection ${peer.id}: expected 'attach' or 'heartbeat', got '${msg.type}'`);
        this.liveness.attach(peer, msg, this.workerList.get(msg.workerId) ?? [...this.peers].find((p) => p.id === msg.workerId && p.role === 'worker'));
        return;
      }
      default:
        return;
    }
  }

  private onWorkerReply(peer: Peer, msg: Message): void {
    let ok = false;
    switch (msg.type) {
      case 'gradients':
      case 'predictions':
      case 'phase_ready':
        ok = peer.settle(msg.type, String(msg.id), msg);
        break;
      case 'weights_ack':
        ok = peer.settle('weights_ack', String(msg.version), msg);
        break;
      case 'grad_bucket':
        ok = peer.bucket(msg); // a bad bucket throws: the worker is rejected, its request redone by the others
        break;
      case 'error':
        // a worker could not do what it was asked (e.g. an unreadable image): the task counts a failure
        // (a task failing on several workers fails the step), the worker is dropped and may reconnect
        peer.failPending(new WorkerTaskError(peer.id, msg.code, msg.message));
        // ... unless a shard it had to send to is gone: not the worker's fault (the sharded step rolls back)
        if (msg.code === 'E_SHARD_LOST') return;
        this.drop(peer, `worker error ${msg.code}: ${msg.message}`);
        return;
      default:
        break;
    }
    if (!ok) throw new DptrainError('E_PROTOCOL_SCHEMA', `worker ${peer.id}: unexpected '${msg.type}' message`);
  }
}

export { WorkerLostError };
