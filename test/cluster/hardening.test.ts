import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { EventBus, createNonce, decodeMessage, encodeMessage, isDptrainError, loadDataset, parseRunConfig, type RunEvent } from '@dptrain/core';
import { ClusterServer } from '../../packages/coordinator/src/cluster/index.js';
import { connectAndAuth, connectObserver } from '@dptrain/client';
import { dptrain, makeSceneDir, tinyFlags, waitFor, type Proc } from './fixtures.testutil.js';
import { closedWithin, frameHeader, rawConnect, rawUpgrade, streamFrame } from './raw-socket.testutil.js';

/**
 * The coordinator probed from outside, as an attacker or a bad day would do it: a real coordinator process on
 * loopback, raw TCP sockets and hand-made frames. (Other loopback addresses, 127.0.0.2 and up, stand for other hosts.)
 */
const TOKEN = 'hardening-token-7d1f0c9a';
const procs: Proc[] = [];
let dir: string;
let runDir: string;
let coordinator: Proc;
let port: number;
let metricsPort: number;
let url: string;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

function httpGet(host: string, p: number, path: string, localAddress = '127.0.0.1'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port: p, path, localAddress, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function runLog(): RunEvent[] {
  return readFileSync(join(runDir, 'run.log.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { event: string } & RunEvent)
    .map((l) => ({ ...l, type: l.event }) as unknown as RunEvent);
}

let honest: Proc | undefined;
/** Starts the honest worker (once) and waits until it trains. */
async function ensureWorker(): Promise<Proc> {
  if (!honest) {
    honest = dptrain(['worker', '--connect', url, '--data', dir, '--backend', 'cpu', '--name', 'honest'], { DPTRAIN_TOKEN: TOKEN });
    procs.push(honest);
  }
  await waitFor(honest, (o) => /joined as w\d+/.test(o), 200_000, 'honest worker join');
  await waitFor(coordinator, () => stepCount() >= 2, 120_000, 'training');
  return honest;
}

const stepCount = (): number => (coordinator.output().match(/^.*step \d+.*loss/gm) ?? []).length;

beforeAll(async () => {
  dir = await makeSceneDir({ perClass: 8, test: 3 });
  runDir = mkdtempSync(join(tmpdir(), 'dp-harden-run-'));
  metricsPort = await freePort();
  coordinator = dptrain(
    [
      'coordinator',
      '--listen',
      '127.0.0.1:0',
      '--metrics-port',
      String(metricsPort),
      '--min-workers',
      '1',
      '--out',
      runDir,
      '--plain',
      '--log-every',
      '10',
      '--no-charts',
      // far more epochs than the tests take: the run is killed at the end
      ...tinyFlags(dir, { epochs: 1_000_000, patience: 1_000_000, 'checkpoint-every': 0 }),
    ],
    { DPTRAIN_TOKEN: TOKEN },
  );
  procs.push(coordinator);
  await waitFor(coordinator, (o) => /coordinator listening on ws:\/\/127\.0\.0\.1:\d+/.test(o), 120_000, 'coordinator start');
  url = /coordinator listening on (ws:\/\/127\.0\.0\.1:\d+)/.exec(coordinator.output())![1]!;
  port = Number(url.split(':').pop());
}, 180_000);

afterAll(async () => {
  if (process.env.DPTRAIN_TEST_DUMP) writeFileSync(process.env.DPTRAIN_TEST_DUMP, coordinator?.output() ?? '');
  for (const p of procs) if (p.child.exitCode === null) p.child.kill(p === coordinator ? 'SIGKILL' : 'SIGTERM');
  await Promise.all(procs.map((p) => Promise.race([p.exited, new Promise((r) => setTimeout(r, 10_000))])));
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  // no process outlives the tests
  for (const p of procs) expect(p.child.exitCode !== null || p.child.signalCode !== null).toBe(true);
}, 60_000);

describe('exposure', () => {
  it('refuses a WebSocket upgrade that carries a browser Origin (403); a client without one gets 101', async () => {
    const evil = await rawConnect(port);
    expect(await rawUpgrade(evil, { Origin: 'http://evil.example' })).toBe(403);
    evil.destroy();
    const plain = await rawConnect(port);
    expect(await rawUpgrade(plain)).toBe(101);
    plain.destroy();
  });

  it("the --metrics-port server follows the coordinator's host (127.0.0.1), so another address cannot reach it", async () => {
    expect((await httpGet('127.0.0.1', metricsPort, '/healthz')).status).toBe(200);
    // a server bound to 0.0.0.0 would answer on 127.0.0.2 too; one bound to 127.0.0.1 refuses the connection
    await expect(httpGet('127.0.0.2', metricsPort, '/healthz', '127.0.0.2')).rejects.toThrow(/ECONNREFUSED/);
  });
});

describe('connections that never authenticate', () => {
  it('200 raw TCP sockets that never send the upgrade: those over the per-address cap are refused at once, the rest closed within the pre-upgrade timeout, and others still get in', {
    timeout: 60_000,
  }, async () => {
    const sockets = await Promise.all(Array.from({ length: 200 }, () => rawConnect(port, '127.0.0.2')));
    const t0 = Date.now();
    const closed = sockets.map((s) => closedWithin(s));
    // another address is not held up by the flood: /status answers meanwhile
    const status = await httpGet('127.0.0.1', port, '/status');
    expect(status.status).toBe(200);
    const times = await Promise.race([Promise.all(closed), new Promise<null>((r) => setTimeout(() => r(null), 15_000))]);
    const open = sockets.filter((s) => !s.destroyed && !s.closed).length;
    for (const s of sockets) s.destroy();
    expect(times, `${open} of 200 raw sockets still open after 15 s`).not.toBeNull();
    const early = times!.filter((t) => t < 2000).length;
    console.log(`raw sockets: ${early} closed within 2 s (over the cap), all 200 within ${Date.now() - t0} ms`);
    expect(early).toBeGreaterThanOrEqual(200 - 32);
    const rejected = JSON.parse((await httpGet('127.0.0.1', port, '/status')).body).rejected as Record<string, number>;
    expect(rejected.E_OVERLOAD).toBeGreaterThanOrEqual(200 - 32);
    expect(rejected.E_TIMEOUT).toBeGreaterThan(0);
  });
});

describe('the base-model reference', () => {
  it("is the coordinator's own: a worker with a bogus base hash joining first is refused, and honest workers then join", { timeout: 240_000 }, async () => {
    const conn = await connectAndAuth({ url, token: TOKEN, role: 'worker' });
    expect(conn.accepted.config).toBeDefined();
    const refusal = new Promise<{ type: string; code?: string; message?: string }>((resolve) => {
      conn.onMessage(
        (m) => {
          if (m.type === 'error') resolve(m);
        },
        () => undefined,
      );
      conn.ws.once('close', () => resolve({ type: 'closed' }));
    });
    // the right data set, a made-up base
    conn.send({ type: 'join', backend: 'cpu', device: 'cpu', batchCapacity: 8, host: 'bogus', baseHash: 'f'.repeat(64), datasetHash: loadDataset(dir).hash });
    const answer = await refusal;
    conn.ws.terminate();
    expect(answer.type).toBe('error');
    expect(answer.code).toBe('E_BASE_HASH');
    const worker = await ensureWorker();
    expect(worker.output()).not.toMatch(/E_BASE_HASH/);
  });
});

describe('pre-authentication memory', () => {
  it('one 256 MiB frame before hello grows the coordinator by at most 64 MiB, is refused with E_PROTOCOL_OVERSIZE, and training goes on', {
    timeout: 120_000,
  }, async () => {
    await ensureWorker();
    const pid = coordinator.child.pid!;
    const base = rssBytes(pid);
    let peak = base;
    const poll = setInterval(() => (peak = Math.max(peak, rssBytes(pid))), 10);
    const s = await rawConnect(port, '127.0.0.4');
    expect(await rawUpgrade(s)).toBe(101);
    const t0 = Date.now();
    const sent = await streamFrame(s, 256 * 1024 * 1024);
    await closedWithin(s);
    await new Promise((r) => setTimeout(r, 500));
    clearInterval(poll);
    const growth = peak - base;
    console.log(
      `256 MiB pre-auth frame: ${(sent / 2 ** 20).toFixed(1)} MiB written before the coordinator closed (${Date.now() - t0} ms); RSS ${(base / 2 ** 20).toFixed(0)} MiB -> peak ${(peak / 2 ** 20).toFixed(0)} MiB (+${(growth / 2 ** 20).toFixed(1)} MiB)`,
    );
    expect(growth).toBeLessThanOrEqual(64 * 2 ** 20);
    const steps = stepCount();
    await waitFor(coordinator, () => stepCount() >= steps + 3, 60_000, 'training after the frame');
    const oversize = runLog().filter((e) => e.type === 'frame_rejected' && (e as { code: string }).code === 'E_PROTOCOL_OVERSIZE');
    expect(oversize.some((e) => /before authentication/.test((e as { reason: string }).reason))).toBe(true);
  });
});

describe('rejection floods', () => {
  it('1,000 bad frames from one address cost a handful of log lines, all counted; observers keep the run history', { timeout: 180_000 }, async () => {
    const linesBefore = (coordinator.output().match(/frame rejected/g) ?? []).length;
    const logBefore = runLog().filter((e) => e.type === 'frame_rejected').length;
    const N = 1000;
    const floodStart = Date.now();
    let done = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (done < N) {
          done++;
          const s = await rawConnect(port, '127.0.0.5');
          const closed = closedWithin(s);
          if ((await rawUpgrade(s).catch(() => 0)) === 101) {
            s.once('data', () => s.destroy()); // the coordinator's error frame: done
            s.write(Buffer.concat([frameHeader(3), Buffer.from([1, 2, 3])]));
          }
          await closed;
        }
      }),
    );
    const floodMs = Date.now() - floodStart;
    // the held rejections are summed up when the window (10 s) ends
    const t0 = Date.now();
    let summed = 0;
    let flood: RunEvent[] = [];
    while (Date.now() - t0 < 60_000) {
      flood = runLog().filter((e) => e.type === 'frame_rejected' && (e as { address?: string }).address === '127.0.0.5');
      summed = flood.reduce((a, e) => a + ((e as { count?: number }).count ?? 1), 0);
      if (summed >= N) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const lines = (coordinator.output().match(/frame rejected/g) ?? []).length - linesBefore;
    // per 10 s window: 5 one by one and one summary per code (a loaded machine may take several windows)
    const bound = 6 * (Math.ceil(floodMs / 10_000) + 1);
    console.log(
      `flood: ${N} rejections in ${floodMs} ms -> ${flood.length} run.log.jsonl events (bound ${bound}) (${runLog().filter((e) => e.type === 'frame_rejected').length - logBefore} in all), ${lines} stdout lines, counts summing to ${summed}`,
    );
    expect(summed).toBe(N);
    expect(flood.length).toBeLessThanOrEqual(bound);
    expect(lines).toBeLessThanOrEqual(bound);
    const status = JSON.parse((await httpGet('127.0.0.1', port, '/status')).body) as { rejected: Record<string, number> };
    expect(status.rejected.E_PROTOCOL_DECODE).toBeGreaterThanOrEqual(N);

    const seen: RunEvent[] = [];
    const obs = await connectObserver({ url, token: TOKEN, onEvent: (e) => seen.push(e), reconnect: false });
    await new Promise((r) => setTimeout(r, 500));
    obs.close();
    expect(seen.some((e) => e.type === 'run_started')).toBe(true);
    expect(seen.some((e) => e.type === 'worker_joined')).toBe(true);
    expect(seen.filter((e) => e.type === 'frame_rejected').length).toBeLessThanOrEqual(500);
  });
});

describe('mutual authentication', () => {
  it('a worker and an observer refuse a coordinator that cannot prove it knows the token (E_AUTH_COORDINATOR)', { timeout: 120_000 }, async () => {
    // a rogue coordinator: answers the handshake without the token and hands out a config
    const config = parseRunConfig({
      dataDir: dir,
      backbone: { kind: 'tiny-vgg', inputSize: [32, 32], tinyWidths: [4, 4, 8, 8, 8] },
      preprocess: 'unit',
      head: { units: 8, dropout: 0 },
      batchSize: 8,
    });
    const rogue = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    let joins = 0;
    rogue.on('connection', (ws) => {
      let role = '';
      ws.on('message', (d) => {
        const m = decodeMessage(d as Buffer);
        if (m.type === 'hello') {
          role = m.role;
          ws.send(encodeMessage({ type: 'challenge', nonce: createNonce() }));
        } else if (m.type === 'auth') {
          // workers get no proof at all, observers a made-up one: both must be refused
          ws.send(
            encodeMessage(
              role === 'worker' ? { type: 'accepted', role: 'worker', workerId: 'w1', config } : { type: 'accepted', role: 'observer', proof: createNonce() },
            ),
          );
        } else if (m.type === 'join') joins++;
      });
    });
    await new Promise((r) => rogue.once('listening', r));
    const rogueUrl = `ws://127.0.0.1:${(rogue.address() as { port: number }).port}`;
    try {
      const worker = dptrain(['worker', '--connect', rogueUrl, '--data', dir, '--backend', 'cpu'], { DPTRAIN_TOKEN: TOKEN });
      procs.push(worker);
      const code = await Promise.race([worker.exited, new Promise<string>((r) => setTimeout(() => r('still running'), 60_000))]);
      if (code === 'still running') worker.child.kill('SIGKILL');
      expect(code, `${worker.output().slice(-2000)}\njoins seen by the rogue: ${joins}`).toBe(2);
      expect(worker.output()).toMatch(/refused: E_AUTH_COORDINATOR/);
      expect(joins).toBe(0);
      await expect(connectObserver({ url: rogueUrl, token: TOKEN, onEvent: () => undefined, reconnect: false })).rejects.toSatisfy((e) =>
        isDptrainError(e, 'E_AUTH_COORDINATOR'),
      );
    } finally {
      for (const c of rogue.clients) c.terminate();
      await new Promise((r) => rogue.close(r));
    }
  });
});

describe('the client side before the proof', () => {
  it('a worker or dashboard refuses a frame over 1 MiB before the coordinator proved itself, from its header', { timeout: 60_000 }, async () => {
    const rogue = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    rogue.on('connection', (ws) => ws.once('message', () => ws.send(Buffer.alloc(4 * 1024 * 1024, 0x91))));
    await new Promise((r) => rogue.once('listening', r));
    try {
      const rogueUrl = `ws://127.0.0.1:${(rogue.address() as { port: number }).port}`;
      await expect(connectObserver({ url: rogueUrl, token: TOKEN, onEvent: () => undefined, reconnect: false })).rejects.toThrow(/Max payload size exceeded/);
    } finally {
      for (const c of rogue.clients) c.terminate();
      await new Promise((r) => rogue.close(r));
    }
  });
});

describe('in-process servers (options at small sizes)', () => {
  const tinyConfig = () =>
    parseRunConfig({
      dataDir: dir,
      backbone: { kind: 'tiny-vgg', inputSize: [32, 32], tinyWidths: [4, 4, 8, 8, 8] },
      preprocess: 'unit',
      head: { units: 8, dropout: 0 },
      batchSize: 8,
    });

  it('rejections have a history of their own: a flood cannot push the run events out of what observers receive', { timeout: 60_000 }, async () => {
    const bus = new EventBus();
    const server = new ClusterServer({ token: TOKEN, config: tinyConfig(), bus, maxEventHistory: 100 });
    await server.listen();
    try {
      for (let i = 0; i < 10; i++) bus.emit({ type: 'log', time: Date.now(), level: 'info', message: `run event ${i}` });
      for (let i = 0; i < 300; i++) {
        const s = await rawConnect(server.address.port, '127.0.0.6');
        const closed = closedWithin(s);
        if ((await rawUpgrade(s).catch(() => 0)) === 101) {
          s.once('data', () => s.destroy());
          s.write(Buffer.concat([frameHeader(3), Buffer.from([1, 2, 3])]));
        }
        await closed;
      }
      expect(server.rejected.get('E_PROTOCOL_DECODE')).toBe(300);
      const seen: RunEvent[] = [];
      const obs = await connectObserver({ url: server.url, token: TOKEN, onEvent: (e) => seen.push(e), reconnect: false });
      await new Promise((r) => setTimeout(r, 300));
      obs.close();
      const runEvents = seen.filter((e) => e.type === 'log' && /^run event \d$/.test(e.message));
      expect(runEvents.length).toBe(10);
    } finally {
      await server.close();
    }
  });

  it('warns when it listens beyond loopback without TLS, not on loopback', { timeout: 60_000 }, async () => {
    for (const [host, warned] of [
      ['0.0.0.0', true],
      ['127.0.0.1', false],
    ] as const) {
      const logs: string[] = [];
      const bus = new EventBus();
      bus.on((e) => e.type === 'log' && e.level === 'warn' && logs.push(e.message));
      const server = new ClusterServer({ token: TOKEN, config: tinyConfig(), bus, host });
      await server.listen();
      await server.close();
      expect(
        logs.some((m) => /plain ws \(no TLS\)/.test(m)),
        `${host}: ${logs.join(' | ')}`,
      ).toBe(warned);
    }
  });
});
