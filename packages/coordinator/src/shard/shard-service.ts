import {
  CLOSE_CODES,
  DptrainError,
  isDptrainError,
  resolveProtocolOptions,
  useNativeOptimizer,
  type Message,
  type MessageOf,
  type ProtocolOptions,
  type RunConfig,
} from '@dptrain/core';
import { connectAndAuth } from '@dptrain/client';
import { RangeOwner, type ReducePart } from './range-owner.js';
import { SenderServer } from './sender-server.js';

export interface ShardOptions {
  /** ws:// or wss:// URL of the coordinator. */
  url: string;
  /** Shared secret of the run. */
  token: string;
  /** Interface senders reach this shard on. Default '0.0.0.0'. */
  host?: string;
  /** Port for senders; 0 picks a free one. Default 0. */
  port?: number;
  /** Host name or address put in the URL the coordinator hands to senders. Default: `host` (127.0.0.1 for 0.0.0.0). */
  advertiseHost?: string;
  /** PEM CA file trusted for the coordinator's wss://. Default: the system CAs. */
  ca?: string;
  /** PEM certificate and key for this shard's own wss:// (the coordinator's TLS files). Default: plain ws. */
  tls?: { cert: string; key: string };
  /** Protocol limits (the coordinator's). Default: DEFAULT_PROTOCOL_OPTIONS. */
  protocol?: ProtocolOptions;
  /** How long a reduce waits for the senders' ranges, in ms. Default 120000. */
  rangeTimeoutMs?: number;
  /** Progress lines. Default: stderr. */
  log?: (message: string) => void;
}

export interface ShardHandle {
  /** Resolves when the shard stops: the coordinator said bye, or its connection was lost. */
  done: Promise<{ reason: 'run_complete' | 'lost' | 'refused'; detail: string }>;
  stop(): Promise<void>;
}

/**
 * `dptrain shard`: one shard of the sharded summation service. It joins the coordinator (role `shard`, the run's
 * token), serves senders on its own port, and for the range the coordinator seeds it with: keeps each sender's
 * gradient range, merges the ranges the coordinator lists, applies the optimizer step to its range with its
 * range's state, and sends the range's new weights to every sender and to the coordinator.
 */
export async function startShard(opts: ShardOptions): Promise<ShardHandle> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`dptrain shard: ${m}\n`));
  const protocol = resolveProtocolOptions(opts.protocol);
  const conn = await connectAndAuth({ url: opts.url, token: opts.token, role: 'shard', ...(opts.ca ? { ca: opts.ca } : {}) });
  const config: RunConfig | undefined = conn.accepted.config;
  if (!config) throw new DptrainError('E_PROTOCOL_SCHEMA', 'the coordinator accepted this shard without a run config');
  const id = conn.accepted.workerId ?? 'shard';
  // the native addon's compiled Adam when it loads (DPTRAIN_NATIVE_OPTIMIZER=0: the JS loop; the same bits either way)
  const nativeAdam = await useNativeOptimizer();
  log(`${id}: optimizer ${nativeAdam ? "the native addon's compiled Adam" : 'the JS loop'}`);
  let owner: RangeOwner | undefined;
  // a reduce waits for the senders' ranges, which come over other connections
  let waiting: { parts: ReducePart[]; wake: () => void } | undefined;
  const senders = new SenderServer({
    token: opts.token,
    host: opts.host ?? '0.0.0.0',
    port: opts.port ?? 0,
    tls: opts.tls,
    protocol,
    onMessage: (sender, msg) => {
      if (msg.type !== 'grad_range') throw new DptrainError('E_PROTOCOL_SCHEMA', `sender ${sender}: unexpected '${msg.type}'`);
      if (!owner) throw new DptrainError('E_PROTOCOL_SCHEMA', `sender ${sender}: a gradient range before this shard owns a range`);
      owner.accept(sender, msg);
      if (waiting && owner.has(waiting.parts)) waiting.wake();
    },
    onRefused: (sender, err) => log(`refused sender ${sender}: ${err.message}`),
  });
  const listened = await senders.listen();
  const port = new URL(listened).port;
  const bindHost = opts.host ?? '0.0.0.0';
  const host = opts.advertiseHost ?? (bindHost === '0.0.0.0' || bindHost === '::' ? '127.0.0.1' : bindHost);
  const url = `${opts.tls ? 'wss' : 'ws'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log(`${id}: serving senders on ${url}`);

  let finish: (r: { reason: 'run_complete' | 'lost' | 'refused'; detail: string }) => void = () => undefined;
  const done = new Promise<{ reason: 'run_complete' | 'lost' | 'refused'; detail: string }>((r) => (finish = r));
  let lastSeen = Date.now();
  const beat = setInterval(() => {
    if (Date.now() - lastSeen > protocol.lostAfterMs) {
      log(`coordinator silent for ${Date.now() - lastSeen} ms; stopping`);
      conn.ws.terminate();
      return;
    }
    if (conn.ws.readyState === conn.ws.OPEN) conn.send({ type: 'heartbeat', time: Date.now() });
  }, protocol.heartbeatIntervalMs);
  beat.unref();
  let said: 'run_complete' | 'refused' | undefined;
  let detail = 'coordinator connection lost';
  conn.ws.on('close', () => {
    clearInterval(beat);
    void senders.close().then(() => finish({ reason: said ?? 'lost', detail }));
  });

  const reply = (m: Parameters<typeof conn.send>[0]): void => {
    if (conn.ws.readyState === conn.ws.OPEN) conn.send(m);
  };

  async function reduce(msg: MessageOf<'shard_reduce'>): Promise<void> {
    const o = owner;
    if (!o) throw new DptrainError('E_PROTOCOL_SCHEMA', 'shard_reduce before shard_seed');
    if (!o.has(msg.parts)) {
      const timeout = opts.rangeTimeoutMs ?? 120_000;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, timeout);
        waiting = {
          parts: msg.parts,
          wake: () => {
            clearTimeout(t);
            resolve();
          },
        };
      });
      waiting = undefined;
      const missing = o.missing(msg.parts);
      if (missing.length > 0) {
        reply({ type: 'shard_reduced', id: msg.id, sums: [], refused: missing });
        return;
      }
    }
    reply({ type: 'shard_reduced', id: msg.id, sums: o.reduce(msg.parts, msg.n, msg.microBatch), refused: [] });
  }

  function handle(msg: Message): void | Promise<void> {
    switch (msg.type) {
      case 'shard_seed':
        owner = new RangeOwner({ generation: msg.generation, range: msg.range, size: msg.size, weights: msg.weights, optimizer: msg.optimizer }, config!);
        log(`${id}: owns ${msg.range.start}..${msg.range.end} of ${msg.size} (generation ${msg.generation}, update ${msg.optimizer.iterations})`);
        reply({ type: 'shard_seeded', id: msg.id });
        return;
      case 'shard_reduce':
        return reduce(msg);
      case 'shard_update': {
        if (!owner) throw new DptrainError('E_PROTOCOL_SCHEMA', 'shard_update before shard_seed');
        const w = owner.update(msg.learningRate, msg.iterations, msg.scale);
        const sentTo = senders.broadcast({ type: 'weights_range', version: msg.version, offset: owner.range.start, weights: w });
        reply({ type: 'shard_updated', id: msg.id, weights: w, sentTo });
        return;
      }
      case 'shard_state': {
        if (!owner) throw new DptrainError('E_PROTOCOL_SCHEMA', 'shard_state before shard_seed');
        const s = owner.exportState();
        reply({ type: 'shard_state_reply', id: msg.id, kind: s.kind, learningRate: s.learningRate, iterations: s.iterations, slots: s.slots });
        return;
      }
      case 'bye':
        said = 'run_complete';
        detail = `the coordinator said bye: ${msg.reason}`;
        conn.ws.close(CLOSE_CODES.normal, 'bye');
        return;
      case 'error':
        said = 'refused';
        detail = `${msg.code}: ${msg.message}`;
        log(`coordinator error ${msg.code}: ${msg.message}`);
        return;
      default:
        return;
    }
  }

  // requests are served in order: a reduce that waits for ranges holds the update that follows it
  let chain: Promise<void> = Promise.resolve();
  conn.onMessage(
    (msg) => {
      lastSeen = Date.now();
      if (msg.type === 'heartbeat') return;
      chain = chain.then(async () => {
        try {
          await handle(msg);
        } catch (err) {
          const code = isDptrainError(err) ? err.code : 'E_INTERNAL';
          const message = err instanceof Error ? err.message : String(err);
          log(`${code}: ${message}`);
          reply({ type: 'error', code, message: message.slice(0, 4000) });
        }
      });
    },
    (err) => {
      log(`bad frame from the coordinator: ${err.message}`);
      conn.ws.terminate();
    },
  );
  reply({ type: 'shard_ready', url });
  return {
    done,
    stop: async () => {
      conn.ws.close(CLOSE_CODES.normal, 'shard stopping');
      await done;
    },
  };
}
