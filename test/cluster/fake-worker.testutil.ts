import { packGradients, type Message } from '@dptrain/core';
import { connectAndAuth, type AuthedConnection } from '@dptrain/client';

/**
 * A misbehaving worker for the cluster tests: a real WebSocket client that authenticates, joins with the
 * coordinator's reference hashes, heartbeats, switches phases like a worker, and then answers its steps in one
 * of these ways (after `honestSteps` steps answered with small plausible gradients, when given):
 * - 'silent': never answers anything, phase switches included (but keeps heartbeating);
 * - 'poison': answers with a finite gradient of the right length scaled to `scale` (default 1e25);
 * - 'bad-frame': answers with bytes that are not a message;
 * - 'late': answers `lateMs` after the request, with a plausible gradient.
 */
export type FakeBehaviour = 'silent' | 'poison' | 'bad-frame' | 'late';

export interface FakeWorkerOptions {
  url: string;
  token: string;
  hashes: { baseHash?: string; datasetHash?: string };
  behaviour: FakeBehaviour;
  /** Steps answered with small plausible gradients first. Default 0. */
  honestSteps?: number;
  /** 'poison': value of every gradient element. Default 1e25. */
  scale?: number;
  /** 'late': delay of the answer, ms. Default 10 000. */
  lateMs?: number;
  /** Host name it joins with. Default 'fake-<behaviour>'. */
  host?: string;
  /** Heartbeat interval, ms. Default 300. */
  heartbeatMs?: number;
}

export interface FakeWorker {
  conn: AuthedConnection;
  /** Step requests received. */
  steps: number;
  /** Resolves when the coordinator closed the connection. */
  closed: Promise<void>;
  close(): void;
}

export async function startFakeWorker(opts: FakeWorkerOptions): Promise<FakeWorker> {
  const conn = await connectAndAuth({ url: opts.url, token: opts.token, role: 'worker' });
  let size = 0;
  const fake: FakeWorker = {
    conn,
    steps: 0,
    closed: new Promise<void>((res) => conn.ws.once('close', () => res())),
    close: () => conn.ws.terminate(),
  };
  const beat = setInterval(() => {
    if (conn.ws.readyState === conn.ws.OPEN) conn.send({ type: 'heartbeat', time: Date.now() });
  }, opts.heartbeatMs ?? 300);
  void fake.closed.then(() => clearInterval(beat));
  const timers = new Set<ReturnType<typeof setTimeout>>();
  void fake.closed.then(() => timers.forEach((t) => clearTimeout(t)));
  const answer = (msg: Extract<Message, { type: 'step' }>, value: number): void => {
    if (conn.ws.readyState !== conn.ws.OPEN && conn.ws.readyState !== conn.ws.CLOSING) return;
    const g = new Float32Array(size).fill(value);
    conn.send({ type: 'gradients', id: msg.id, ...packGradients(g, 'fp32'), loss: 1, count: msg.indices.length, correct: 0, computeMs: 1 });
  };
  conn.onMessage(
    (msg) => {
      if (msg.type === 'welcome') size = msg.weights?.length ?? 0;
      else if (msg.type === 'weights') size = msg.weights.length;
      else if (msg.type === 'weights_bucket') size = msg.total;
      else if (msg.type === 'phase') {
        if (msg.weights) size = msg.weights.length;
        if (opts.behaviour === 'silent') return;
        conn.send({ type: 'phase_ready', id: msg.id, spec: [{ name: 'fake', shape: [size], size }], weights: msg.wantWeights ? new Float32Array(size) : null });
      } else if (msg.type === 'step') {
        fake.steps++;
        if (fake.steps <= (opts.honestSteps ?? 0)) return answer(msg, 1e-3);
        switch (opts.behaviour) {
          case 'silent':
            return;
          case 'poison':
            return answer(msg, opts.scale ?? 1e25);
          case 'bad-frame':
            conn.ws.send(Buffer.from([0xc1, 0xff, 0x00, 0x13, 0x37]));
            return;
          case 'late': {
            const t = setTimeout(() => {
              timers.delete(t);
              // sent even if the coordinator has begun closing: a late answer must not count
              try {
                answer(msg, 1e-3);
              } catch {
                // the socket is gone
              }
            }, opts.lateMs ?? 10_000);
            timers.add(t);
            return;
          }
        }
      } else if (msg.type === 'predict') {
        // never asked in these tests' runs before the fake is gone; answer nothing
      }
    },
    () => undefined,
  );
  conn.send({
    type: 'join',
    backend: 'fake',
    device: 'fake',
    batchCapacity: 64,
    host: opts.host ?? `fake-${opts.behaviour}`,
    baseHash: opts.hashes.baseHash ?? '?',
    datasetHash: opts.hashes.datasetHash ?? '?',
  });
  return fake;
}
