/** The body of the liveness thread (see liveness.ts): heartbeats while the main thread makes progress. */
import { parentPort, workerData } from 'node:worker_threads';
import { CLOSE_CODES } from '@dptrain/core/protocol';
import { connectAndAuth } from '@dptrain/client';
import type { LivenessThreadData } from './liveness.js';

const data = workerData as LivenessThreadData;
const counter = new Int32Array(data.progress);
const log = (line: string): void => parentPort?.postMessage({ log: line });

try {
  const conn = await connectAndAuth({ url: data.url, token: data.token, role: 'liveness', ...(data.ca ? { ca: data.ca } : {}) });
  conn.onMessage(
    () => undefined,
    (err) => log(`liveness connection: bad frame: ${err.message}`),
  );
  conn.send({ type: 'attach', workerId: data.workerId, key: data.key });
  parentPort?.postMessage({ attached: true });
  let seen = Atomics.load(counter, 0);
  let changedAt = Date.now();
  const timer = setInterval(() => {
    const now = Date.now();
    const c = Atomics.load(counter, 0);
    if (c !== seen) {
      seen = c;
      changedAt = now;
    }
    if (now - changedAt > data.stallLimitMs) {
      log(`main thread made no progress for ${now - changedAt} ms (limit ${data.stallLimitMs} ms): heartbeats stop`);
      clearInterval(timer);
      conn.ws.close(CLOSE_CODES.normal, 'main thread stalled');
      return;
    }
    if (conn.ws.readyState === conn.ws.OPEN) conn.send({ type: 'heartbeat', time: now });
  }, data.heartbeatIntervalMs);
  conn.ws.on('close', () => clearInterval(timer));
} catch (err) {
  log(`liveness connection failed: ${(err as Error).message}`);
  parentPort?.postMessage({ attached: false });
}
