// Parameter exchange benchmark: the time for the coordinator to gather, average and broadcast VGG16
// block5 + head (about 9.2 M floats) with N = 1, 2, 4, 8 worker processes on loopback, next to a raw TCP
// copy of the same bytes in the same run. Run alone: `npx tsx bench/exchange.bench.ts [--quick]`.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';
import { parseRunConfig, useNativeOptimizer, type Sample } from '@dptrain/core';
import { ClusterExecutor, ClusterServer } from '../packages/coordinator/src/cluster/index.js';

export interface ExchangeBenchOptions {
  /** Floats exchanged per worker each way. Default 9.2e6 (VGG16 block5 + a 256-unit head). */
  floats?: number;
  /** Worker counts to measure. Default [1, 2, 4, 8] ([1, 2] with quick). */
  workers?: number[];
  /** Timed rounds per count (the median is reported). Default 3 (1 with quick). */
  rounds?: number;
  /** Fewer counts and rounds. Default false. */
  quick?: boolean;
  /** Progress lines. Default: console.log. */
  log?: (line: string) => void;
}

export interface ExchangeResult {
  workers: number;
  /** Bytes through the coordinator per round (gradients in + weights out). */
  bytes: number;
  /** Gather + weighted average + broadcast (acknowledged), median over rounds. */
  clusterMs: number;
  /** Raw TCP copy of the same bytes (in and out), median over rounds. */
  rawMs: number;
  clusterMBps: number;
  rawMBps: number;
  /** clusterMBps / rawMBps. */
  percentOfRaw: number;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const child = path.join(here, 'exchange-worker.ts');

function spawnChild(args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', child, ...args], { stdio: ['ignore', 'ignore', 'inherit'], cwd: path.join(here, '..') });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function clusterRounds(n: number, floats: number, rounds: number): Promise<number[]> {
  const token = 'exchange-bench';
  // one sample (one micro-batch) per worker
  const config = parseRunConfig({ dataDir: '/bench', classNames: ['a', 'b'], microBatch: 1 });
  const server = new ClusterServer({ token, config, protocol: { lostAfterMs: 60_000 } });
  const url = await server.listen();
  const kids = Array.from({ length: n }, () => spawnChild(['cluster', url, token, String(floats)]));
  try {
    while (server.workers.length < n) await server.waitForJoin(1000);
    const executor = new ClusterExecutor({ server, ackWeights: true });
    const { weights } = await executor.beginPhase('head');
    await executor.setWeights(weights); // every worker synced before timing
    const samples: Sample[] = Array.from({ length: n }, (_, i) => ({ split: 'labelled', index: i, name: `${i}`, path: `/${i}`, label: 0 }));
    const times: number[] = [];
    for (let r = 0; r <= rounds; r++) {
      const t0 = performance.now();
      const res = await executor.computeGradients(samples, { phase: 'head', epoch: 0, step: r });
      for (let i = 0; i < weights.length; i++) weights[i]! -= res.gradients[i]!; // stand-in optimizer step
      await executor.setWeights(weights);
      if (r > 0) times.push(performance.now() - t0); // round 0 warms up
    }
    return times;
  } finally {
    await server.close();
    await Promise.all(kids.map((k) => new Promise((res) => (k.exitCode !== null ? res(null) : k.once('exit', res)))));
  }
}

async function rawRounds(n: number, floats: number, rounds: number): Promise<number[]> {
  const bytes = floats * 4;
  const socks: Socket[] = [];
  const server = createServer((s) => {
    s.setNoDelay(true);
    socks.push(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const kids = Array.from({ length: n }, () => spawnChild(['raw', `127.0.0.1:${port}`, '-', String(floats)]));
  const out = Buffer.alloc(bytes, 3);
  try {
    while (socks.length < n) await new Promise((r) => setTimeout(r, 20));
    const times: number[] = [];
    for (let r = 0; r <= rounds; r++) {
      const t0 = performance.now();
      // gather: each peer sends `bytes` (kept, as the coordinator keeps gradients)
      await Promise.all(
        socks.map(
          (s) =>
            new Promise<Buffer>((resolve) => {
              const parts: Buffer[] = [];
              let got = 0;
              const on = (d: Buffer): void => {
                parts.push(d);
                got += d.length;
                if (got >= bytes) {
                  s.off('data', on);
                  resolve(Buffer.concat(parts, got));
                }
              };
              s.on('data', on);
              s.write(Buffer.from('S'));
            }),
        ),
      );
      // broadcast: send `bytes` to each peer, wait for its 1-byte ack
      await Promise.all(
        socks.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.once('data', () => resolve());
              s.write(out);
            }),
        ),
      );
      if (r > 0) times.push(performance.now() - t0);
    }
    return times;
  } finally {
    for (const s of socks) s.destroy();
    server.close();
    await Promise.all(kids.map((k) => new Promise((res) => (k.exitCode !== null ? res(null) : k.once('exit', res)))));
  }
}

/** Measures the exchange for each worker count; raw and cluster alternate in the same run. */
export async function benchExchange(options: ExchangeBenchOptions = {}): Promise<ExchangeResult[]> {
  const floats = options.floats ?? 9_200_000;
  const counts = options.workers ?? (options.quick ? [1, 2] : [1, 2, 4, 8]);
  const rounds = options.rounds ?? (options.quick ? 1 : 3);
  const log = options.log ?? ((l: string) => console.log(l));
  // As in a real coordinator (runTraining) and worker (its backend): the native addon is loaded when present, which
  // also sets its allocator options (large freed blocks stay in the heap: no page faults on each 37 MB buffer).
  // Loaded before the first round, so the raw TCP baseline in this process runs with the same allocator.
  await useNativeOptimizer();
  const results: ExchangeResult[] = [];
  for (const n of counts) {
    const raw = median(await rawRounds(n, floats, rounds));
    const cluster = median(await clusterRounds(n, floats, rounds));
    const bytes = 2 * n * floats * 4;
    const r: ExchangeResult = {
      workers: n,
      bytes,
      clusterMs: Math.round(cluster),
      rawMs: Math.round(raw),
      clusterMBps: Math.round(bytes / 1e6 / (cluster / 1000)),
      rawMBps: Math.round(bytes / 1e6 / (raw / 1000)),
      percentOfRaw: Math.round((100 * raw) / cluster),
    };
    log(
      `  N=${n}: ${(bytes / 1e6).toFixed(0)} MB/round  cluster ${r.clusterMs} ms (${r.clusterMBps} MB/s)  raw TCP ${r.rawMs} ms (${r.rawMBps} MB/s)  = ${r.percentOfRaw}% of raw`,
    );
    results.push(r);
  }
  return results;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes('--quick');
  console.log(`Parameter exchange, ${(9.2).toFixed(1)} M floats per worker each way (loopback):`);
  const res = await benchExchange({ quick });
  console.log(JSON.stringify(res));
}
