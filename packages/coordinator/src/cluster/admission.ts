import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';

/** Who may open a connection, and for how long it may stay unauthenticated. */
export interface AdmissionOptions {
  /**
   * Unauthenticated connections held at once, in total: TCP connections that have not upgraded yet, plain HTTP
   * clients (GET /status, /metrics) and WebSockets that have not passed the challenge. Default 128.
   */
  maxUnauthenticated?: number;
  /** The same, from one remote address. Default 32 (a host running 8 workers and a dashboard stays far below). */
  maxUnauthenticatedPerAddress?: number;
  /** Time a new TCP connection has to send its HTTP request (the WebSocket upgrade or a GET), in ms. Default 5000. */
  upgradeTimeoutMs?: number;
  /**
   * Origin header values allowed on a WebSocket upgrade. Browsers always send an Origin and dptrain's clients never
   * do, so by default an upgrade that carries one is refused (403): a web page cannot talk to the coordinator.
   * Default: none.
   */
  allowedOrigins?: string[];
}

export type ResolvedAdmissionOptions = Required<AdmissionOptions>;

export const DEFAULT_ADMISSION_OPTIONS: ResolvedAdmissionOptions = {
  maxUnauthenticated: 128,
  maxUnauthenticatedPerAddress: 32,
  upgradeTimeoutMs: 5000,
  allowedOrigins: [],
};

export function resolveAdmissionOptions(options: AdmissionOptions = {}): ResolvedAdmissionOptions {
  const out = { ...DEFAULT_ADMISSION_OPTIONS };
  if (options.maxUnauthenticated !== undefined) out.maxUnauthenticated = options.maxUnauthenticated;
  if (options.maxUnauthenticatedPerAddress !== undefined) out.maxUnauthenticatedPerAddress = options.maxUnauthenticatedPerAddress;
  if (options.upgradeTimeoutMs !== undefined) out.upgradeTimeoutMs = options.upgradeTimeoutMs;
  if (options.allowedOrigins !== undefined) out.allowedOrigins = options.allowedOrigins;
  return out;
}

/** Why a connection was turned away before it could say anything. */
export interface AdmissionRefusal {
  address: string;
  code: 'E_OVERLOAD' | 'E_TIMEOUT' | 'E_ORIGIN';
  reason: string;
}

/** The remote address of a socket, as counted and reported ('?' when the socket is already gone). */
export function addressOf(socket: Socket): string {
  return socket.remoteAddress ?? '?';
}

/** One TCP connection: the raw socket ('connection') and, under TLS, the TLS socket of its requests share it. */
function keyOf(socket: Socket): string {
  return `${socket.remoteAddress ?? '?'}|${socket.remotePort ?? '?'}`;
}

/**
 * Counts unauthenticated connections on an HTTP server, refuses those over the caps at once (the socket is
 * destroyed before anything is read from it), and destroys connections that send no request within
 * `upgradeTimeoutMs` (the auth timeout only starts once the WebSocket is open). A connection stops counting when it
 * authenticates (`authenticated`) or closes.
 */
export class AdmissionGuard {
  readonly options: ResolvedAdmissionOptions;
  private readonly pending = new Map<string, { address: string; socket: Socket; timer: NodeJS.Timeout | undefined }>();
  private readonly perAddress = new Map<string, number>();

  constructor(
    options: AdmissionOptions,
    private readonly onRefused: (refusal: AdmissionRefusal) => void,
  ) {
    this.options = resolveAdmissionOptions(options);
  }

  /** Unauthenticated connections held now (in total). */
  get unauthenticated(): number {
    return this.pending.size;
  }

  attach(http: Server): void {
    // Node's own limit on a request's headers (default 60 s) would let a slow client hold the socket far longer
    http.headersTimeout = this.options.upgradeTimeoutMs;
    http.requestTimeout = Math.max(this.options.upgradeTimeoutMs, 30_000);
    http.on('connection', (socket: Socket) => this.admit(socket));
    const spoke = (req: IncomingMessage): void => this.spoke(req.socket);
    http.on('request', spoke);
    http.on('upgrade', spoke);
  }

  /** True when an upgrade's Origin (if any) is allowed. */
  originAllowed(origin: string | undefined): boolean {
    return origin === undefined || this.options.allowedOrigins.includes(origin);
  }

  /** The socket passed the challenge: it no longer counts against the caps. */
  authenticated(socket: Socket): void {
    this.release(keyOf(socket));
  }

  close(): void {
    for (const key of [...this.pending.keys()]) this.release(key);
  }

  private admit(socket: Socket): void {
    const address = addressOf(socket);
    const fromAddress = this.perAddress.get(address) ?? 0;
    const { maxUnauthenticated, maxUnauthenticatedPerAddress } = this.options;
    if (this.pending.size >= maxUnauthenticated || fromAddress >= maxUnauthenticatedPerAddress) {
      socket.destroy();
      const which =
        this.pending.size >= maxUnauthenticated
          ? `${this.pending.size} in total (limit ${maxUnauthenticated})`
          : `${fromAddress} from ${address} (limit ${maxUnauthenticatedPerAddress})`;
      this.onRefused({ address, code: 'E_OVERLOAD', reason: `connection from ${address} refused: too many unauthenticated connections, ${which}` });
      return;
    }
    const key = keyOf(socket);
    const expire = (): void => {
      const entry = this.pending.get(key);
      if (entry?.socket !== socket || !entry.timer) return;
      socket.destroy();
      this.onRefused({ address, code: 'E_TIMEOUT', reason: `connection from ${address}: no HTTP request within ${this.options.upgradeTimeoutMs} ms` });
    };
    // judged after the I/O that is due has been read (timers run before it): a request that arrived while this
    // process was busy is not taken for silence
    const timer = setTimeout(() => setImmediate(expire), this.options.upgradeTimeoutMs);
    timer.unref();
    this.pending.set(key, { address, socket, timer });
    this.perAddress.set(address, fromAddress + 1);
    socket.once('close', () => {
      if (this.pending.get(key)?.socket === socket) this.release(key);
    });
  }

  private spoke(socket: Socket): void {
    const entry = this.pending.get(keyOf(socket));
    if (!entry?.timer) return;
    clearTimeout(entry.timer);
    entry.timer = undefined;
  }

  private release(key: string): void {
    const entry = this.pending.get(key);
    if (!entry) return;
    if (entry.timer) clearTimeout(entry.timer);
    this.pending.delete(key);
    const n = (this.perAddress.get(entry.address) ?? 1) - 1;
    if (n <= 0) this.perAddress.delete(entry.address);
    else this.perAddress.set(entry.address, n);
  }
}
