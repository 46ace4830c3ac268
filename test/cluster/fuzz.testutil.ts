import { pack } from 'msgpackr';
import WebSocket from 'ws';
import { PROTOCOL_VERSION, authResponse, createNonce, decodeMessage, encodeMessage, mulberry32, packGradients, type Outgoing } from '@dptrain/core';

/** Seeded PRNG so a failing fuzz run can be replayed (core's mulberry32). */
export const prng = mulberry32;

export interface FuzzOptions {
  url: string;
  token: string;
  /** Frames to send in total. */
  frames: number;
  /** Hashes that pass the join check (so some fuzz clients become workers and reply with bad gradients). */
  hashes: () => { baseHash?: string; datasetHash?: string };
  seed?: number;
  /** Concurrent connections. Default 8. */
  lanes?: number;
}

export interface FuzzStats {
  sent: number;
  connections: number;
  joined: number;
  gradientReplies: number;
}

type R = () => number;
const pick = <T>(r: R, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

function randomValue(r: R, depth = 0): unknown {
  const k = Math.floor(r() * (depth > 2 ? 7 : 10));
  switch (k) {
    case 0:
      return null;
    case 1:
      return r() < 0.5;
    case 2:
      return Math.floor((r() - 0.5) * 2 ** (r() * 60));
    case 3:
      return (r() - 0.5) * 1e30;
    case 4:
      return pick(r, [NaN, Infinity, -Infinity, -0, 2 ** 53, -1]);
    case 5:
      return 'x'.repeat(Math.floor(r() * 300));
    case 6:
      return new Float32Array(Math.floor(r() * 20)).map(() => (r() - 0.5) * 10);
    case 7:
      return Array.from({ length: Math.floor(r() * 5) }, () => randomValue(r, depth + 1));
    case 8:
      return Object.fromEntries(
        Array.from({ length: Math.floor(r() * 5) }, (_, i) => [pick(r, ['type', 'v', 'id', 'weights', `k${i}`]), randomValue(r, depth + 1)]),
      );
    default:
      return new Uint8Array(Math.floor(r() * 64)).map(() => r() * 256);
  }
}

const TEMPLATES: Outgoing[] = [
  { type: 'hello', role: 'worker', nonce: new Uint8Array(32) },
  { type: 'auth', mac: new Uint8Array(32) },
  { type: 'join', backend: 'cpu', device: 'cpu', batchCapacity: 8, host: 'fuzz', baseHash: 'x', datasetHash: 'y' },
  { type: 'gradients', id: 1, dtype: 'fp32', gradients: new Float32Array(10), loss: 1, count: 2, correct: 1, computeMs: 1 },
  { type: 'predictions', id: 1, count: 1, probs: new Float32Array(3), computeMs: 1 },
  { type: 'phase_ready', id: 1, spec: [{ name: 'w', shape: [2], size: 2 }], weights: null },
  { type: 'weights_ack', version: 3 },
  { type: 'heartbeat', time: 1 },
  { type: 'step', id: 1, phase: 'head', epoch: 0, step: 0, indices: new Uint32Array([1, 2]), microBatch: 2 },
];

/** A frame that is wrong somehow: random bytes, a mutated or bit-flipped message, a bad version, oversize, text. */
function badFrame(r: R): Buffer | string {
  const k = Math.floor(r() * 8);
  switch (k) {
    case 0:
      return Buffer.from(Array.from({ length: Math.floor(r() * 512) }, () => Math.floor(r() * 256)));
    case 1: {
      const m: Record<string, unknown> = { v: PROTOCOL_VERSION, ...pick(r, TEMPLATES) };
      const keys = Object.keys(m);
      const key = r() < 0.8 ? pick(r, keys) : `extra${Math.floor(r() * 9)}`;
      if (r() < 0.3 && key !== 'type') delete m[key];
      else m[key] = randomValue(r);
      return pack(m);
    }
    case 2: {
      const buf = Buffer.from(encodeMessage(pick(r, TEMPLATES)));
      const flips = 1 + Math.floor(r() * 4);
      for (let i = 0; i < flips; i++) buf[Math.floor(r() * buf.length)] ^= 1 << Math.floor(r() * 8);
      return buf;
    }
    case 3:
      return pack({ ...pick(r, TEMPLATES), v: pick(r, [0, 1, PROTOCOL_VERSION + 1, 99, '1', null, -1]) });
    case 4:
      return pack(randomValue(r));
    case 5:
      return r() < 0.2
        ? Buffer.alloc(70 * 1024 + Math.floor(r() * 1024), 0x91)
        : pack({ v: PROTOCOL_VERSION, type: pick(r, ['nope', '', 'welcome', 'challenge', 'events', 'bye2']) });
    case 6:
      return JSON.stringify(pick(r, TEMPLATES));
    default:
      return Buffer.from(encodeMessage(pick(r, TEMPLATES))).subarray(0, Math.floor(r() * 10));
  }
}

/** A gradients reply that is always invalid: wrong length, NaN/Inf, wrong count, wrong dtype or wrong id. */
function badGradients(r: R, id: number, size: number, count: number): Buffer {
  const g = new Float32Array(size).map(() => (r() - 0.5) * 1e-3);
  const base = { type: 'gradients' as const, id, loss: 1, count, correct: 0, computeMs: 1 };
  switch (Math.floor(r() * 6)) {
    case 0:
      return encodeMessage({ ...base, ...packGradients(new Float32Array(Math.max(0, size + pick(r, [-1, 1, -size, 7]))), false) });
    case 1:
      g[Math.floor(r() * size)] = pick(r, [NaN, Infinity, -Infinity]);
      return encodeMessage({ ...base, ...packGradients(g, false) });
    case 2:
      return encodeMessage({ ...base, count: count + 1 + Math.floor(r() * 3), ...packGradients(g, false) });
    case 3:
      return encodeMessage({ ...base, dtype: 'fp16', gradients: g });
    case 4:
      g[0] = 1e9;
      return encodeMessage({ ...base, ...packGradients(g, 'fp16') }); // overflows fp16 -> Inf
    default:
      return encodeMessage({ ...base, id: id + 1000, ...packGradients(g, false) });
  }
}

function sendAll(ws: WebSocket, frames: (Buffer | string)[], stats: FuzzStats): Promise<void> {
  return Promise.all(
    frames.map(
      (f) =>
        new Promise<void>((res) =>
          ws.send(f, (err) => {
            if (!err) stats.sent++;
            res();
          }),
        ),
    ),
  ).then(() => undefined);
}

/** One fuzz connection: a scenario chosen at random. */
async function lane(opts: FuzzOptions, r: R, stats: FuzzStats): Promise<void> {
  const ws = new WebSocket(opts.url, { perMessageDeflate: false });
  stats.connections++;
  const closed = new Promise<void>((res) => ws.once('close', () => res()));
  ws.on('error', () => undefined);
  const opened = await Promise.race([new Promise<boolean>((res) => ws.once('open', () => res(true))), closed.then(() => false)]);
  if (!opened) return;
  const scenario = r();
  const n = 1 + Math.floor(r() * (scenario < 0.45 ? 16 : 6));
  const timeout = setTimeout(() => ws.terminate(), 1500);
  try {
    if (scenario < 0.45) {
      // garbage before authentication
      await sendAll(
        ws,
        Array.from({ length: n }, () => badFrame(r)),
        stats,
      );
    } else {
      const role = scenario < 0.55 ? 'observer' : 'worker';
      const queue: ReturnType<typeof decodeMessage>[] = [];
      let wake: () => void = () => undefined;
      ws.on('message', (d) => {
        try {
          queue.push(decodeMessage(d as Buffer));
          wake();
        } catch {
          /* ignore */
        }
      });
      const next = async (type: string, ms = 1000): Promise<ReturnType<typeof decodeMessage> | undefined> => {
        const t0 = Date.now();
        for (;;) {
          const i = queue.findIndex((m) => m.type === type);
          if (i >= 0) return queue.splice(i, 1)[0];
          if (Date.now() - t0 > ms || ws.readyState !== ws.OPEN) return undefined;
          await Promise.race([new Promise<void>((res) => (wake = res)), new Promise((res) => setTimeout(res, 50))]);
        }
      };
      const clientNonce = createNonce();
      await sendAll(ws, [encodeMessage({ type: 'hello', role, nonce: clientNonce })], stats);
      const ch = await next('challenge');
      if (!ch || ch.type !== 'challenge') return;
      const wrongToken = scenario < 0.65;
      await sendAll(ws, [encodeMessage({ type: 'auth', mac: authResponse(wrongToken ? 'not-the-token' : opts.token, ch.nonce, role, clientNonce) })], stats);
      if (wrongToken || !(await next('accepted'))) return;
      if (role === 'observer' || scenario < 0.75) {
        await sendAll(
          ws,
          Array.from({ length: n }, () => badFrame(r)),
          stats,
        );
        return;
      }
      const h = opts.hashes();
      const goodHashes = scenario > 0.85;
      await sendAll(
        ws,
        [
          encodeMessage({
            type: 'join',
            backend: 'fuzz',
            device: 'fuzz',
            batchCapacity: 8,
            host: 'fuzzer',
            baseHash: goodHashes ? (h.baseHash ?? '?') : `bad${Math.floor(r() * 9)}`,
            datasetHash: goodHashes || r() < 0.5 ? (h.datasetHash ?? '?') : 'bad',
          }),
        ],
        stats,
      );
      const welcome = goodHashes ? await next('welcome') : undefined;
      if (!welcome || welcome.type !== 'welcome') return;
      stats.joined++;
      // a joined fuzz worker answers its first step with an invalid gradient
      const step = await next('step', 1200);
      if (step && step.type === 'step') {
        const size = welcome.weights?.length ?? 10;
        stats.gradientReplies++;
        await sendAll(ws, [badGradients(r, step.id, size, step.indices.length)], stats);
      } else {
        await sendAll(ws, [badFrame(r)], stats);
      }
    }
    await Promise.race([closed, new Promise((res) => setTimeout(res, 300))]);
  } finally {
    clearTimeout(timeout);
    ws.terminate();
  }
}

/** Sends at least `frames` bad frames over many connections; resolves with what was sent. */
export async function fuzzCoordinator(opts: FuzzOptions): Promise<FuzzStats> {
  const stats: FuzzStats = { sent: 0, connections: 0, joined: 0, gradientReplies: 0 };
  const r = prng(opts.seed ?? 1);
  await Promise.all(
    Array.from({ length: opts.lanes ?? 8 }, async () => {
      while (stats.sent < opts.frames) await lane(opts, r, stats);
    }),
  );
  return stats;
}
