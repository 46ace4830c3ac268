import { hostname } from 'node:os';
import {
  CLOSE_CODES,
  debugFromEnv,
  DptrainError,
  describeUnexpectedError,
  isDptrainError,
  stripControl,
  type BackendInfo,
  type Message,
  type MessageOf,
  type Outgoing,
  type RunConfig,
  wireGradientPrecision,
} from '@dptrain/core';
import { Backoff, connectAndAuth, type AuthedConnection, type BackoffOptions } from '@dptrain/client';
import { LIVENESS_DEFAULTS, startLiveness } from './liveness.js';
import { livenessThreadAllowed } from './env.js';
import { ShardedSender } from './sharded-sender.js';
import { gradBucket, sendStepReply, type GradientOut } from './gradient-stream.js';

/** Refusals that end the worker instead of a retry. */
const FATAL_CODES: string[] = ['E_AUTH', 'E_BASE_HASH', 'E_DATASET_HASH', 'E_PROTOCOL_VERSION', 'E_AUTH_COORDINATOR', 'E_PRECISION', 'E_BATCH_CAPACITY'];

/** Defaults of {@link UpstreamOptions}. */
export const UPSTREAM_DEFAULTS = { heartbeatIntervalMs: 1000, lostAfterMs: 5000, giveUpAfterMs: 120_000, stopGraceMs: 10_000 } as const;

/** What the join message says, less what the link adds (`host`). */
export type JoinFields = Omit<Outgoing<'join'>, 'type' | 'host'>;

/**
 * What answers the coordinator's messages, one handler per message type: a replica (a plain worker, worker.ts) or a
 * local cluster (an agent). The upstream link owns the connection; the handlers own the compute.
 */
export interface MessageHandlers {
  /** Builds what the run `config` needs (kept across reconnects while the config is the same) and says what to join with. */
  prepare(config: RunConfig, workerId: string): Promise<JoinFields>;
  welcome(msg: MessageOf<'welcome'>): Promise<void>;
  phase(msg: MessageOf<'phase'>): Promise<Outgoing<'phase_ready'>>;
  /** `frame`: the message as received (its fragments), for a handler that forwards it as it is. */
  weights(msg: MessageOf<'weights'>, frame: Buffer[]): Promise<void>;
  /** One bucket of new weights (the pipelined update sends them in order; `frame`: as received, for forwarding). */
  weightsBucket(msg: MessageOf<'weights_bucket'>, frame: Buffer[]): Promise<void>;
  /**
   * The mean gradient of a step's slice. A handler may stream it (an agent merges its local workers' buckets as they
   * come): each bucket to `out`, in order, then a reply with an empty gradient; else the reply carries it whole and
   * the link cuts it into the buckets the step asks for.
   */
  step(msg: MessageOf<'step'>, out: GradientOut): Promise<Outgoing<'gradients'>>;
  predict(msg: MessageOf<'predict'>): Promise<Outgoing<'predictions'>>;
  /**
   * Where the large arrays of incoming frames are decoded to (codec's BlobDestination: a plain worker puts each
   * weights bucket straight into its assembly's memory). Default: views of the frame, or fresh copies.
   */
  blobDestination?(header: Readonly<Record<string, unknown>>, key: string, bytes: number): Uint8Array | undefined;
  /** `--shards auto`: start a shard beside this process (an agent's; a plain worker has none and ignores it). */
  hostShard?(): void | Promise<void>;
  /** Releases what `prepare` built (the link is done for good). */
  dispose(): void | Promise<void>;
}

export interface UpstreamOptions {
  /** ws:// or wss:// URL of the coordinator. */
  url: string;
  /** Shared secret (--token or DPTRAIN_TOKEN). */
  token: string;
  /** PEM CA file trusted for wss://. Default: system CAs. */
  ca?: string;
  /** Heartbeat interval in ms. Default 1000. */
  heartbeatIntervalMs?: number;
  /** The coordinator is considered gone after this much silence, in ms. Default 5000. */
  lostAfterMs?: number;
  /** Reconnect delays. Default: 250 ms doubling up to 5 s. */
  backoff?: BackoffOptions;
  /** Stop retrying after this long without a connection, in ms (`--give-up-after`, in seconds). Default 120000 (2 min). */
  giveUpAfterMs?: number;
  /** After stop(): longest wait for the request in flight to settle before the handlers are disposed, in ms. Default 10000. */
  stopGraceMs?: number;
  /** Host name reported at join. Default os.hostname(). */
  host?: string;
  /** The backend in use (its GPU verdict picks the liveness thread's stall limit). Default: none. */
  backend?: BackendInfo;
  /** Progress lines. Default: stderr. */
  log?: (message: string) => void;
  /** Send heartbeats from a worker_thread over a second connection (liveness.ts). Default: true unless $DPTRAIN_LIVENESS_THREAD is 0. */
  livenessThread?: boolean;
  /** The liveness thread stops beating after the main thread made no progress for this long, in ms. Default 600000, 3600000 under a PTX JIT. */
  stallLimitMs?: number;
}

/** Why the worker stopped. */
export interface WorkerExit {
  reason: 'run_complete' | 'gave_up' | 'refused' | 'stopped';
  detail: string;
}

export interface WorkerHandle {
  /** Resolves when the worker stops for good. */
  done: Promise<WorkerExit>;
  stop(): void;
}

/** The log line prefix of a worker process. */
export function workerLog(m: string): void {
  // what the coordinator sends (refusals, bye reasons) is logged without control characters
  process.stderr.write(`dptrain worker: ${stripControl(m, { keepNewlines: true })}\n`);
}

/**
 * The link of a worker (or agent) to its coordinator: connects, authenticates, has `handlers` prepare for the run
 * config it is sent, joins, then hands each request to its handler, one at a time, with heartbeats (from a thread
 * of their own). It reconnects with exponential backoff when the coordinator goes away, keeping what was prepared,
 * and ends on the coordinator's `bye` (run complete), a fatal refusal, `--give-up-after`, or stop().
 */
export function runUpstream(opts: UpstreamOptions, compute: MessageHandlers): WorkerHandle {
  const log = opts.log ?? workerLog;
  // a sharded run's steps send their gradient's ranges to the shards (worker or agent alike)
  const handlers = new ShardedSender(compute, { token: opts.token, ca: opts.ca, log });
  const backoff = new Backoff(opts.backoff);
  let stopped = false;
  let currentWs: AuthedConnection['ws'] | undefined;
  let exit: (e: WorkerExit) => void = () => undefined;
  const done = new Promise<WorkerExit>((r) => (exit = r));

  // a request being served, and how to say goodbye on the open connection (see stop)
  let inFlight: Promise<void> | undefined;
  let sayBye: ((reason: string) => void) | undefined;
  let finished = false;
  const finish = (e: WorkerExit): void => {
    if (finished) return;
    finished = true;
    stopped = true;
    void Promise.resolve(handlers.dispose()).finally(() => exit(e));
  };

  /** One handler per message type; the replies go back on `send`. */
  async function dispatch(msg: Message, frame: Buffer[], send: (m: Outgoing) => void, config: RunConfig): Promise<void> {
    switch (msg.type) {
      case 'welcome':
        return handlers.welcome(msg);
      case 'phase':
        return send(await handlers.phase(msg));
      case 'weights':
        await handlers.weights(msg, frame);
        if (msg.ack) send({ type: 'weights_ack', version: msg.version });
        return;
      case 'weights_bucket':
        await handlers.weightsBucket(msg, frame);
        if (msg.ack) send({ type: 'weights_ack', version: msg.version }); // asked on the last bucket only
        return;
      case 'step': {
        const precision = msg.precision ?? wireGradientPrecision(config);
        const reply = await handlers.step(msg, (offset, total, values) => send(gradBucket(msg.id, offset, total, values, precision)));
        return sendStepReply(msg, reply, send);
      }
      case 'shard_map':
        return handlers.shardMap(msg);
      case 'shard_host':
        return handlers.hostShard();
      case 'predict':
        return send(await handlers.predict(msg));
      case 'error':
        log(`coordinator error ${msg.code}: ${msg.message}`);
        return;
      default:
        throw new DptrainError('E_PROTOCOL_SCHEMA', `unexpected '${msg.type}' from the coordinator`);
    }
  }

  async function session(): Promise<'closed' | 'bye'> {
    const conn = await connectAndAuth({ url: opts.url, token: opts.token, role: 'worker', ...(opts.ca ? { ca: opts.ca } : {}) });
    currentWs = conn.ws;
    const { accepted } = conn;
    if (!accepted.config || !accepted.workerId) throw new DptrainError('E_PROTOCOL_SCHEMA', 'coordinator accepted without a run config');
    log(`authenticated as ${accepted.workerId}; preparing the replica`);
    const config = accepted.config;
    const queue: { msg: Message; frame: Buffer[] }[] = [];
    let wakeQueue: () => void = () => undefined;
    let lastSeen = Date.now();
    let closed = false;
    let byeSeen = false;
    conn.onMessage(
      (msg, frame) => {
        lastSeen = Date.now();
        if (msg.type === 'heartbeat') return;
        queue.push({ msg, frame });
        wakeQueue();
      },
      (err) => {
        log(`bad frame from the coordinator: ${err.message}`);
        conn.ws.terminate();
      },
      (header, key, bytes) => handlers.blobDestination(header, key, bytes),
    );
    const closedP = new Promise<void>((resolve) =>
      conn.ws.on('close', () => {
        closed = true;
        resolve();
        wakeQueue();
      }),
    );
    const interval = opts.heartbeatIntervalMs ?? UPSTREAM_DEFAULTS.heartbeatIntervalMs;
    const liveness =
      accepted.livenessKey && (opts.livenessThread ?? livenessThreadAllowed())
        ? startLiveness({
            url: opts.url,
            token: opts.token,
            workerId: accepted.workerId,
            key: accepted.livenessKey,
            heartbeatIntervalMs: interval,
            log,
            stallLimitMs:
              opts.stallLimitMs ?? (opts.backend?.gpu?.tfjsNodeGpu === 'ptx-jit' ? LIVENESS_DEFAULTS.ptxJitStallLimitMs : LIVENESS_DEFAULTS.stallLimitMs),
            ...(opts.ca ? { ca: opts.ca } : {}),
          })
        : undefined;
    let lastTick = Date.now();
    const beat = setInterval(() => {
      const now = Date.now();
      liveness?.tick();
      // a late tick means our own event loop was busy: the silence is ours, not the coordinator's
      if (now - lastTick > 2 * interval) lastSeen = Math.max(lastSeen, now - interval);
      lastTick = now;
      if (now - lastSeen > (opts.lostAfterMs ?? UPSTREAM_DEFAULTS.lostAfterMs)) {
        log(`coordinator silent for ${now - lastSeen} ms; reconnecting`);
        conn.ws.terminate();
        return;
      }
      if (conn.ws.readyState === conn.ws.OPEN) conn.send({ type: 'heartbeat', time: now });
    }, interval);
    beat.unref?.();
    const send = (m: Outgoing): void => {
      if (conn.ws.readyState === conn.ws.OPEN) conn.send(m);
    };
    sayBye = (reason: string): void => {
      send({ type: 'bye', reason });
      conn.ws.close(CLOSE_CODES.normal, 'worker stopping');
    };
    try {
      const join = await handlers.prepare(config, accepted.workerId);
      await liveness?.ready; // heartbeats off the main thread before any step can block it
      backoff.reset();
      send({ type: 'join', ...join, host: opts.host ?? hostname() });
      while (!closed) {
        const next = queue.shift();
        if (!next) {
          await new Promise<void>((res) => (wakeQueue = res));
          continue;
        }
        const { msg } = next;
        if (msg.type === 'error' && FATAL_CODES.includes(msg.code)) {
          // refused at join (hashes, version): retrying the same replica cannot help
          throw new DptrainError(msg.code as 'E_AUTH', `coordinator refused this worker: ${msg.message}`);
        }
        if (msg.type === 'bye') {
          byeSeen = true;
          log(`coordinator said bye: ${msg.reason}`);
          conn.ws.close(CLOSE_CODES.normal, 'bye');
          break;
        }
        if (stopped) break;
        const handling = dispatch(msg, next.frame, send, config);
        inFlight = handling.then(
          () => undefined,
          () => undefined,
        );
        try {
          await handling;
        } catch (err) {
          // stopped mid-request: the replica is going away and the coordinator was told goodbye, not a failure
          if (stopped) break;
          const code = isDptrainError(err) ? err.code : 'E_WORKER';
          // an unexpected error says where it happened (phase, step, layer, kernel); its stack with DPTRAIN_DEBUG=1
          const message = isDptrainError(err) ? err.message : describeUnexpectedError(err);
          log(`${code}: ${message}`);
          if (debugFromEnv() && err instanceof Error && err.stack) log(err.stack);
          send({ type: 'error', code, message: message.slice(0, 4000) });
        } finally {
          inFlight = undefined;
        }
        await new Promise<void>((res) => setImmediate(res)); // let heartbeats out between requests
      }
      await Promise.race([closedP, new Promise((res) => setTimeout(res, 200))]);
      return byeSeen ? 'bye' : 'closed';
    } finally {
      sayBye = undefined;
      clearInterval(beat);
      void liveness?.stop();
      if (!closed) conn.ws.terminate();
    }
  }

  void (async () => {
    let since = Date.now();
    while (!stopped) {
      try {
        const how = await session();
        if (stopped) break;
        if (how === 'bye') return finish({ reason: 'run_complete', detail: 'the coordinator finished the run' });
        log('connection lost; reconnecting');
        since = Date.now();
      } catch (err) {
        if (stopped) break;
        if (isDptrainError(err) && FATAL_CODES.includes(err.code)) {
          return finish({ reason: 'refused', detail: `${err.code}: ${err.message}` });
        }
        if (isDptrainError(err) && !err.code.startsWith('E_PROTOCOL') && err.code !== 'E_TIMEOUT') {
          // the replica could not be built (bad data, weights...): retrying will not help
          return finish({ reason: 'refused', detail: `${err.code}: ${err.message}` });
        }
        log(`cannot reach ${opts.url}: ${(err as Error).message}`);
      }
      const giveUpAfterMs = opts.giveUpAfterMs ?? UPSTREAM_DEFAULTS.giveUpAfterMs;
      if (Date.now() - since > giveUpAfterMs) {
        return finish({ reason: 'gave_up', detail: `no coordinator at ${opts.url} for ${Math.round(giveUpAfterMs / 1000)} s (--give-up-after); exiting` });
      }
      await new Promise((res) => setTimeout(res, backoff.next()));
    }
    finish({ reason: 'stopped', detail: 'stopped' });
  })();

  return {
    done,
    stop: () => {
      if (stopped) return;
      stopped = true;
      if (sayBye) {
        // the coordinator drops us at once and redoes our share; the request in flight is abandoned
        sayBye('worker stopping');
        log('stopping: said goodbye to the coordinator');
      } else currentWs?.close(CLOSE_CODES.normal, 'worker stopping');
      // the handlers are disposed once the request in flight has settled (or after the grace period)
      const grace = new Promise<void>((res) => setTimeout(res, opts.stopGraceMs ?? UPSTREAM_DEFAULTS.stopGraceMs).unref());
      void Promise.race([inFlight ?? Promise.resolve(), grace]).then(() => finish({ reason: 'stopped', detail: 'stopped' }));
    },
  };
}
