import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import {
  DptrainError,
  EventBus,
  NONCE_BYTES,
  computeBaseHash,
  coordinatorProof,
  createNonce,
  decodeMessage,
  encodeMessage,
  isDptrainError,
  resolveProtocolOptions,
  systemClock,
  verifyAuthResponse,
  type Clock,
  type Message,
  type MessageOf,
  type ProtocolOptions,
  type ResolvedProtocolOptions,
  type RunConfig,
  type RunEvent,
} from '@dptrain/core';
import { Peer, WorkerLostError, WorkerTaskError } from './peer.js';
import { LivenessLinks } from './liveness.js';
import { AdmissionGuard, addressOf, type AdmissionOptions, type AdmissionRefusal } from './admission.js';
import { EventHistory } from './event-history.js';
import { plainTextExposureWarning } from './exposure.js';
import { maxPayloadOf, setMaxPayload } from '@dptrain/client';
import { RejectionLog, type RejectionLogOptions } from './rejections.js';
import { checkJoinPrecision } from './join-precision.js';
import { checkJoinCapacity } from './join-capacity.js';
import type { RunState } from './run-sync.js';

/** An extra HTTP route on the coordinator's server (e.g. /metrics). Return true when the request was handled. */
export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>;

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
 * The coordinator's WebSocket server: authenticates workers and observers, checks hashes at join,
 * keeps heartbeats, rejects bad frames (with a `frame_rejected` event and a dropped connection), and
 * forwards every run event to observers. Work distribution lives in ClusterExecutor.
 */
export class ClusterServer {
  readonly bus: EventBus;
  readonly options: ResolvedProtocolOptions;
  private readonly clock: Clock;
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly peers = new Set<Peer>();
  private readonly workerList = new Map<string, Peer>();
  private readonly observers = new Set<Peer>();
  private readonly history: EventHistory;
  private readonly admission: AdmissionGuard;
  private readonly rejections: RejectionLog;
  private readonly sockets = new WeakMap<Peer, Socket>();
  private readonly joinWaiters = new Set<(peer: Peer) => void>();
  private readonly lostListeners = new Set<(peer: Peer, reason: string) => void>();
  private readonly liveness = new LivenessLinks();
  private baseHash: string | undefined;
  private baseSource = 'given to the coordinator';
  private datasetHash: string | undefined;
  private connSeq = 0;
  private closing = false;
  private workerSeq = 0;
  private timer: NodeJS.Timeout | undefined;
  private livenessTimer: NodeJS.Timeout | undefined;
  private lastLivenessCheck = 0;
  private readonly unsubscribe: () => void;
  private runState: Readonly<RunState> = { step: 0, phase: null, weights: null, version: -1 };
  /** Counts by reason code of the frames rejected so far. */
  readonly rejected = new Map<string, number>();

  /** The run configuration sent to every worker on join. */
  get config(): RunConfig {
    return this.opts.config;
  }

  constructor(private readonly opts: ClusterServerOptions) {
    if (!opts.token) throw new DptrainError('E_AUTH', 'a shared token is required (--token or DPTRAIN_TOKEN)');
    this.options = resolveProtocolOptions(opts.protocol);
    this.clock = opts.clock ?? systemClock;
    this.bus = opts.bus ?? new EventBus();
    this.baseHash = opts.baseHash;
    this.datasetHash = opts.datasetHash;
    this.history = new EventHistory({ maxRunEvents: opts.maxEventHistory, maxRejections: opts.maxRejectionHistory });
    this.rejections = new RejectionLog((e) => this.emit(e), this.clock, opts.rejectionLog);
    this.admission = new AdmissionGuard(opts.admission ?? {}, (r) => this.refused(r));
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handleHttp(req, res);
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
    this.unsubscribe = this.bus.on((e) => this.onEvent(e));
  }

  /** Starts listening; resolves with the URL workers connect to. */
  async listen(): Promise<string> {
    if (this.baseHash === undefined) {
      const base = await computeBaseHash(this.opts.config, (m) => this.emit({ type: 'log', time: this.clock.now(), level: 'warn', message: m }));
      this.baseHash = base.hash;
      this.baseSource = `computed by the coordinator from its own copy (weights: ${base.weightsSource})`;
    }
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this.opts.port ?? 0, this.opts.host ?? '127.0.0.1', () => {
        this.http.off('error', reject);
        resolve();
      });
    });
    this.timer = setInterval(() => this.sendHeartbeats(), this.options.heartbeatIntervalMs);
    this.timer.unref();
    // Liveness is checked far more often than heartbeats are sent, so a silent worker is declared lost
    // within lostAfterMs of its last frame, not up to a heartbeat interval later.
    this.livenessTimer = setInterval(() => this.checkLiveness(), this.livenessCheckMs);
    this.livenessTimer.unref();
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
    return { baseHash: this.baseHash, datasetHash: this.datasetHash };
  }

  /** What an observer receives on connect: the run's events and the rejections, each history bounded on its own. */
  get eventHistory(): readonly RunEvent[] {
    return this.history.snapshot();
  }

  /** Unauthenticated connections held now. */
  get unauthenticatedConnections(): number {
    return this.admission.unauthenticated;
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
    this.drop(peer, `${code}: ${err.message}`, 1008);
  }

  /** Closes a peer; a joined worker is reported lost and its outstanding requests fail. */
  drop(peer: Peer, reason: string, code = 1000): void {
    if (peer.closed) return;
    const wasWorker = peer.state === 'joined' && !this.closing;
    peer.close(reason, code);
    this.peers.delete(peer);
    this.observers.delete(peer);
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
    if (this.timer) clearInterval(this.timer);
    if (this.livenessTimer) clearInterval(this.livenessTimer);
    this.rejections.stop();
    this.admission.close();
    this.unsubscribe();
    for (const p of [...this.peers]) {
      try {
        if (opts.bye ?? true) p.send({ type: 'bye', reason: 'coordinator shutting down' });
      } catch {
        // ignore
      }
      this.drop(p, 'coordinator shutting down', 1001);
    }
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeAllConnections?.();
  }

  // ---- internals ---------------------------------------------------------------------------

  private async handleHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      for (const h of this.opts.httpHandlers ?? []) if (await h(req, res)) return;
      if (req.method === 'GET' && (req.url === '/status' || req.url === '/')) {
        const body = JSON.stringify({
          step: this.state.step,
          phase: this.state.phase,
          workers: this.workers.map((w) => ({ ...w.info, bytesIn: w.bytesIn, bytesOut: w.bytesOut })),
          observers: this.observers.size,
          rejected: Object.fromEntries(this.rejected),
        });
        res.writeHead(200, { 'content-type': 'application/json' }).end(body);
        return;
      }
      res.writeHead(404).end();
    } catch (err) {
      if (!res.headersSent) res.writeHead(500);
      res.end(String((err as Error).message));
    }
  }

  /** A connection turned away before it could authenticate: counted and reported like a rejected frame. */
  private refused(r: AdmissionRefusal): void {
    this.rejected.set(r.code, (this.rejected.get(r.code) ?? 0) + 1);
    this.rejections.record(r.address, r.code, r.reason);
  }

  private onEvent(e: RunEvent): void {
    this.history.add(e);
    if (this.observers.size === 0) return;
    const frame = encodeMessage({ type: 'events', events: [e as unknown as MessageOf<'events'>['events'][number]] });
    for (const o of this.observers) o.send(frame);
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
      case 'hello': {
        if (msg.type !== 'hello') throw new DptrainError('E_PROTOCOL_SCHEMA', `connection ${peer.id}: expected 'hello', got '${msg.type}'`);
        if (msg.nonce.length !== NONCE_BYTES)
          throw new DptrainError('E_AUTH', `connection ${peer.id}: hello nonce of ${msg.nonce.length} bytes (expected ${NONCE_BYTES})`);
        peer.role = msg.role;
        peer.clientNonce = msg.nonce;
        peer.nonce = createNonce();
        peer.state = 'auth';
        peer.send({ type: 'challenge', nonce: peer.nonce });
        return;
      }
      case 'auth': {
        if (msg.type !== 'auth') throw new DptrainError('E_PROTOCOL_SCHEMA', `connection ${peer.id}: expected 'auth', got '${msg.type}'`);
        if (!verifyAuthResponse(this.opts.token, peer.nonce!, peer.role!, peer.clientNonce!, msg.mac)) {
          throw new DptrainError('E_AUTH', `connection ${peer.id} (${peer.role}): bad token`);
        }
        // authenticated: no longer counted against the caps, and the large frame limit applies from now on
        const socket = this.sockets.get(peer);
        if (socket) this.admission.authenticated(socket);
        setMaxPayload(peer.ws, this.options.maxPayload);
        const proof = coordinatorProof(this.opts.token, peer.nonce!, peer.role!, peer.clientNonce!);
        if (peer.role === 'liveness') {
          this.liveness.accept(peer, proof);
        } else if (peer.role === 'observer') {
          peer.state = 'observing';
          peer.send({ type: 'accepted', role: 'observer', proof });
          peer.send({ type: 'events', events: this.history.snapshot() as unknown as MessageOf<'events'>['events'] });
          this.observers.add(peer);
        } else {
          peer.state = 'join';
          peer.id = `w${++this.workerSeq}`;
          peer.send({ type: 'accepted', role: 'worker', workerId: peer.id, config: this.opts.config, proof, livenessKey: this.liveness.issue(peer.id) });
        }
        return;
      }
      case 'join': {
        if (msg.type !== 'join') throw new DptrainError('E_PROTOCOL_SCHEMA', `worker ${peer.id}: expected 'join', got '${msg.type}'`);
        if (msg.baseHash !== this.baseHash) {
          throw new DptrainError(
            'E_BASE_HASH',
            `worker ${peer.id} (${msg.host}): frozen base hash ${msg.baseHash} differs from the reference ${this.baseHash}, ${this.baseSource}: every machine needs the same base weights`,
          );
        }
        this.datasetHash ??= msg.datasetHash;
        if (msg.datasetHash !== this.datasetHash) {
          throw new DptrainError(
            'E_DATASET_HASH',
            `worker ${peer.id} (${msg.host}): data set hash ${msg.datasetHash} differs from the reference ${this.datasetHash}`,
          );
        }
        checkJoinPrecision(this.opts.config.precision, peer.id, msg);
        checkJoinCapacity(this.opts.config.microBatch, `worker ${peer.id} (${msg.host})`, msg.batchCapacity);
        peer.info = {
          id: peer.id,
          host: msg.host,
          backend: msg.backend,
          device: msg.device,
          batchCapacity: msg.batchCapacity,
          ...(msg.gpu ? { gpu: msg.gpu } : {}),
          ...(msg.precision ? { precision: msg.precision } : {}),
        };
        peer.state = 'joined';
        const s = this.state;
        peer.send({ type: 'welcome', workerId: peer.id, step: s.step, phase: s.phase, weights: s.phase ? s.weights : null });
        this.workerList.set(peer.id, peer);
        this.emit({ type: 'worker_joined', time: this.clock.now(), worker: peer.info });
        for (const w of [...this.joinWaiters]) w(peer);
        return;
      }
      case 'joined': {
        this.onWorkerReply(peer, msg);
        return;
      }
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
        ok = peer.settle('weights_ack', String(msg.step), msg);
        break;
      case 'error':
        // a worker could not do what it was asked (e.g. an unreadable image): the task counts a failure
        // (a task failing on several workers fails the step), the worker is dropped and may reconnect
        peer.failPending(new WorkerTaskError(peer.id, msg.code, msg.message));
        this.drop(peer, `worker error ${msg.code}: ${msg.message}`);
        return;
      default:
        break;
    }
    if (!ok) throw new DptrainError('E_PROTOCOL_SCHEMA', `worker ${peer.id}: unexpected '${msg.type}' message`);
  }

  /** How often liveness is checked: a twentieth of lostAfterMs, at most the heartbeat interval, at least 25 ms. */
  private get livenessCheckMs(): number {
    return Math.max(25, Math.min(this.options.heartbeatIntervalMs, Math.floor(this.options.lostAfterMs / 20)));
  }

  private checkLiveness(): void {
    const now = this.clock.now();
    const late = this.lastLivenessCheck > 0 && now - this.lastLivenessCheck > 2 * this.livenessCheckMs + 250;
    this.lastLivenessCheck = now;
    // A late check means this process's own event loop was busy: frames that workers sent meanwhile are still
    // unread (timers run before I/O), so their silence is ours. Judge again once the I/O has been read.
    if (late) return;
    // declared lost once silent for lostAfterMs less one check period, so detection never lands past the limit
    const limit = this.options.lostAfterMs - this.livenessCheckMs;
    for (const p of [...this.peers]) {
      if (p.closed) continue;
      // ('join': authenticated and building its replica, which may block its event loop; joinTimeoutMs covers it)
      if ((p.state === 'joined' || p.state === 'observing') && now - p.lastSeen > limit) {
        this.drop(p, `silent for ${now - p.lastSeen} ms (limit ${this.options.lostAfterMs} ms)`, 4000);
      }
    }
  }

  private sendHeartbeats(): void {
    const now = this.clock.now();
    const beat = encodeMessage({ type: 'heartbeat', time: now });
    for (const p of [...this.peers]) {
      if (p.closed) continue;
      if (p.state === 'joined' || p.state === 'observing' || p.state === 'join') p.send(beat);
    }
  }
}

export { WorkerLostError };
