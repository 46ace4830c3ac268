// Parameter exchange benchmark: the time for the coordinator to gather, average, update and broadcast VGG16
// block5 + head (about 9.2 M floats) with N = 1, 2, 4, 8 worker processes on loopback, next to a raw TCP copy of
// the same bytes in the same run. Run alone:
//   npx tsx bench/exchange.bench.ts [--quick] [--modes pipelined,plain] [--layouts star,hierarchical] [--workers 1,2,4,8]
//     [--rounds R] [--floats F]
// Modes: `pipelined` (ClusterExecutor.trainStep: the update bucket by bucket, each bucket's weights sent at once, the
// native merge), `plain` (computeGradients with the JS merge, the whole update, then one `weights` frame: the code
// before the pipelined update). Layouts: `star` (one connection per worker process) and `hierarchical` (one agent,
// `dptrain worker --nproc-per-node N`, with the N processes behind it). The rounds of every mode, and the raw copy,
// alternate within one run.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  SgdOptimizer,
  parseRunConfig,
  runTrainingStep,
  setVectorKernels,
  useNativeOptimizer,
  type RunConfig,
  type Sample,
  type TrainingExecutor,
} from '@dptrain/core';
import { ClusterExecutor, ClusterServer } from '../packages/coordinator/src/cluster/index.js';
import { createLabData } from './exchange-lab/lab-run.js';
import { withoutTrainStep } from '../test/cluster/step-loop.testutil.js';

export type ExchangeMode = 'pipelined' | 'plain';
export type ExchangeLayout = 'star' | 'hierarchical';

export interface ExchangeBenchOptions {
  /** Floats exchanged per worker each way. Default 9.2e6 (VGG16 block5 + the flatten head). */
  floats?: number;
  /** Worker counts to measure. Default [1, 2, 4, 8] ([1, 2] with quick). */
  workers?: number[];
  /** Timed rounds per count and mode (the median is reported). Default 3 (1 with quick). */
  rounds?: number;
  /** Update paths to time, alternating round by round. Default ['pipelined']. */
  modes?: ExchangeMode[];
  /** Process layouts to time. Default ['star']. */
  layouts?: ExchangeLayout[];
  /** Fewer counts and rounds. Default false. */
  quick?: boolean;
  /** Progress lines. Default: console.log. */
  log?: (line: string) => void;
}

export interface ExchangeResult {
  workers: number;
  layout: ExchangeLayout;
  mode: ExchangeMode;
  /** Bytes through the coordinator per round in the star layout (gradients in + weights out): the raw copy's. */
  bytes: number;
  /** Gather + weighted average + update and broadcast (acknowledged), median over rounds. */
  clusterMs: number;
  /** Raw TCP copy of `bytes` (in and out, one process per peer), median over rounds. */
  rawMs: number;
  clusterMBps: number;
  rawMBps: number;
  /** rawMs / clusterMs, in %. */
  percentOfRaw: number;
  /** CPU time per round (user + system, median over rounds, ms): this process (the coordinator) and its peers' processes. */
  cpuMs: { coordinator: number; workers: number; raw: number; rawPeers: number };
}

const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.join(here, '..');
const RAW_PEER = path.join(here, 'exchange-worker.ts');
const SYNTHETIC_WORKER = path.join(here, 'exchange-lab', 'synthetic-worker.ts');
const DPTRAIN = path.join(ROOT, 'packages', 'cli', 'bin', 'dptrain.js');
const TOKEN = 'exchange-bench';

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const exited = (k: ChildProcess): Promise<unknown> =>
  k.exitCode !== null || k.signalCode !== null ? Promise.resolve() : new Promise((r) => k.once('exit', r));

/** User + system CPU time of process `pid` and of every descendant of it still alive, in ms (/proc; 0 if gone). */
function treeCpuMs(pid: number): number {
  const stats = new Map<number, { ppid: number; ticks: number }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      stats.set(Number(name), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) });
    } catch {
      // gone meanwhile
    }
  }
  let ticks = 0;
  const todo = [pid];
  while (todo.length > 0) {
    const p = todo.pop()!;
    ticks += stats.get(p)?.ticks ?? 0;
    for (const [q, st] of stats) if (st.ppid === p) todo.push(q);
  }
  return ticks * 10; // USER_HZ = 100 on Linux
}

/** CPU ms of this process and of `kids` (with their descendants) spent while `run` runs, and its wall time. */
async function timed(kids: ChildProcess[], run: () => Promise<unknown>): Promise<{ wallMs: number; selfMs: number; kidsMs: number }> {
  const kidsCpu = (): number => kids.reduce((a, k) => a + (k.pid ? treeCpuMs(k.pid) : 0), 0);
  const u0 = process.cpuUsage();
  const k0 = kidsCpu();
  const t0 = performance.now();
  await run();
  const wallMs = performance.now() - t0;
  const u = process.cpuUsage(u0);
  return { wallMs, selfMs: (u.user + u.system) / 1000, kidsMs: kidsCpu() - k0 };
}

function spawnNode(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, args, {
    stdio: ['ignore', 'ignore', process.env.DPTRAIN_BENCH_VERBOSE ? 'inherit' : 'ignore'],
    cwd: ROOT,
    env: { ...process.env, DPTRAIN_TOKEN: TOKEN, ...env },
  });
}

/** The run config of the bench (a tiny-VGG base that every process hashes at join in no time, one sample a worker). */
function benchConfig(dataDir: string, n: number): RunConfig {
  return parseRunConfig({ dataDir, backbone: { kind: 'tiny-vgg', inputSize: [32, 32] }, microBatch: 1, batchSize: n, contentHash: 'none' });
}

/** One step's update through `executor`: its pipelined trainStep, or (plain) gradients + the whole update + setWeights. */
const stepper = (executor: ClusterExecutor, mode: ExchangeMode): TrainingExecutor => (mode === 'pipelined' ? executor : withoutTrainStep(executor));

/** A coordinator in this process with `n` synthetic worker processes behind it, in `layout`. */
class BenchCluster {
  private constructor(
    readonly server: ClusterServer,
    readonly executor: ClusterExecutor,
    readonly weights: Float32Array,
    private readonly kids: ChildProcess[],
  ) {}

  static async start(n: number, floats: number, layout: ExchangeLayout, dataDir: string): Promise<BenchCluster> {
    const config = benchConfig(dataDir, n);
    const server = new ClusterServer({ token: TOKEN, config, protocol: { lostAfterMs: 60_000 } });
    const url = await server.listen();
    const worker = ['--import', 'tsx', SYNTHETIC_WORKER, '--floats', String(floats), '--data', dataDir];
    const kids =
      layout === 'star'
        ? Array.from({ length: n }, () => spawnNode([...worker, '--connect', url]))
        : [
            spawnNode(
              [
                DPTRAIN,
                'worker',
                '--connect',
                url,
                '--nproc-per-node',
                String(n),
                '--data',
                dataDir,
                '--worker-command',
                [process.execPath, ...worker].join(' '),
              ],
              { DPTRAIN_PIN_WORKERS: '0' }, // unpinned, as the star layout's processes
            ),
          ];
    const peers = layout === 'star' ? n : 1;
    try {
      const t0 = Date.now();
      while (server.workers.length < peers) {
        if (Date.now() - t0 > 300_000) throw new Error(`exchange bench: ${server.workers.length} of ${peers} peers joined within 300 s`);
        await server.waitForJoin(1000);
      }
      const executor = new ClusterExecutor({ server, ackWeights: true });
      const { weights } = await executor.beginPhase('head');
      await executor.setWeights(weights); // every worker synced before timing
      return new BenchCluster(server, executor, weights, kids);
    } catch (err) {
      await server.close();
      for (const k of kids) k.kill('SIGKILL');
      throw err;
    }
  }

  /** One timed round: a step of one sample per worker process and the update in `mode` (wall and CPU ms). */
  async round(mode: ExchangeMode, step: number, optimizer: SgdOptimizer, n: number): Promise<{ wallMs: number; selfMs: number; kidsMs: number }> {
    const samples: Sample[] = Array.from({ length: n }, (_, i) => ({ split: 'labelled', index: i, name: `${i}`, path: `/${i}`, label: i % 2 }));
    // plain: the code before the pipelined update, the JS merge too
    if (mode === 'plain') setVectorKernels({});
    try {
      // the stand-in optimizer step w -= g (SGD at rate 1)
      const update = { weights: this.weights, optimizer, clipNorm: 0 };
      return await timed(this.kids, () => runTrainingStep(stepper(this.executor, mode), samples, { phase: 'head', epoch: 0, step }, update));
    } finally {
      if (mode === 'plain') await useNativeOptimizer();
    }
  }

  async close(): Promise<void> {
    await this.executor.close({ bye: true });
    await Promise.all(this.kids.map(exited));
  }
}

/** N raw TCP peers (exchange-worker.ts): a round gathers `bytes` from each, then sends `bytes` to each and waits for its ack. */
class RawPeers {
  private constructor(
    private readonly server: ReturnType<typeof createServer>,
    private readonly socks: Socket[],
    private readonly kids: ChildProcess[],
    private readonly bytes: number,
  ) {}

  static async start(n: number, floats: number): Promise<RawPeers> {
    const socks: Socket[] = [];
    const server = createServer((s) => {
      s.setNoDelay(true);
      socks.push(s);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const kids = Array.from({ length: n }, () => spawnNode(['--import', 'tsx', RAW_PEER, `127.0.0.1:${port}`, String(floats)]));
    while (socks.length < n) await new Promise((r) => setTimeout(r, 20));
    return new RawPeers(server, socks, kids, floats * 4);
  }

  async round(): Promise<{ wallMs: number; selfMs: number; kidsMs: number }> {
    return timed(this.kids, () => this.exchange());
  }

  private async exchange(): Promise<void> {
    const out = Buffer.alloc(this.bytes, 3);
    // gather: each peer sends `bytes` (kept, as the coordinator keeps gradients)
    await Promise.all(
      this.socks.map(
        (s) =>
          new Promise<Buffer>((resolve) => {
            const parts: Buffer[] = [];
            let got = 0;
            const on = (d: Buffer): void => {
              parts.push(d);
              got += d.length;
              if (got >= this.bytes) {
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
      this.socks.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.once('data', () => resolve());
            s.write(out);
          }),
      ),
    );
  }

  async close(): Promise<void> {
    for (const s of this.socks) s.destroy();
    this.server.close();
    await Promise.all(this.kids.map(exited));
  }
}

/** Measures the exchange for each worker count and layout; the raw copy and the modes alternate round by round. */
export async function benchExchange(options: ExchangeBenchOptions = {}): Promise<ExchangeResult[]> {
  const floats = options.floats ?? 9_200_000;
  const counts = options.workers ?? (options.quick ? [1, 2] : [1, 2, 4, 8]);
  const rounds = options.rounds ?? (options.quick ? 1 : 3);
  const modes = options.modes ?? ['pipelined'];
  const layouts = options.layouts ?? ['star'];
  const log = options.log ?? ((l: string) => console.log(l));
  // As in a real coordinator (runTraining) and worker (its backend): the native addon is loaded when present, which
  // also sets its allocator options (large freed blocks stay in the heap: no page faults on each 37 MB buffer) and
  // the compiled Adam and merge. Loaded before the first round, so the raw TCP baseline runs with the same allocator.
  await useNativeOptimizer();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'dptrain-exchange-bench-'));
  const results: ExchangeResult[] = [];
  try {
    await createLabData(dataDir);
    for (const n of counts) {
      const raw = await RawPeers.start(n, floats);
      try {
        for (const layout of layouts) {
          const cluster = await BenchCluster.start(n, floats, layout, dataDir);
          type Round = { wallMs: number; selfMs: number; kidsMs: number };
          const times = new Map<ExchangeMode | 'raw', Round[]>();
          const record = (k: ExchangeMode | 'raw', t: Round, r: number): void => {
            if (r > 0) times.set(k, [...(times.get(k) ?? []), t]); // round 0 warms up
          };
          try {
            const optimizer = new SgdOptimizer({ learningRate: 1 });
            for (let r = 0; r <= rounds; r++) {
              record('raw', await raw.round(), r);
              for (const mode of modes) record(mode, await cluster.round(mode, r, optimizer, n), r);
            }
          } finally {
            await cluster.close();
          }
          const med = (k: ExchangeMode | 'raw', f: keyof Round): number => median(times.get(k)!.map((t) => t[f]));
          for (const mode of modes) {
            const cpuMs = { coordinator: med(mode, 'selfMs'), workers: med(mode, 'kidsMs'), raw: med('raw', 'selfMs'), rawPeers: med('raw', 'kidsMs') };
            results.push(summarize(n, floats, layout, mode, med(mode, 'wallMs'), med('raw', 'wallMs'), cpuMs, log));
          }
        }
      } finally {
        await raw.close();
      }
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
  return results;
}

function summarize(
  n: number,
  floats: number,
  layout: ExchangeLayout,
  mode: ExchangeMode,
  cluster: number,
  raw: number,
  cpu: ExchangeResult['cpuMs'],
  log: (l: string) => void,
): ExchangeResult {
  const bytes = 2 * n * floats * 4;
  const r: ExchangeResult = {
    workers: n,
    layout,
    mode,
    bytes,
    clusterMs: Math.round(cluster),
    rawMs: Math.round(raw),
    clusterMBps: Math.round(bytes / 1e6 / (cluster / 1000)),
    rawMBps: Math.round(bytes / 1e6 / (raw / 1000)),
    percentOfRaw: Math.round((100 * raw) / cluster),
    cpuMs: { coordinator: Math.round(cpu.coordinator), workers: Math.round(cpu.workers), raw: Math.round(cpu.raw), rawPeers: Math.round(cpu.rawPeers) },
  };
  log(
    `  N=${n} ${layout} ${mode}: ${(bytes / 1e6).toFixed(0)} MB/round  cluster ${r.clusterMs} ms (${r.clusterMBps} MB/s)  raw TCP ${r.rawMs} ms (${r.rawMBps} MB/s)  = ${r.percentOfRaw}% of raw; CPU ms/round: coordinator ${r.cpuMs.coordinator} + workers ${r.cpuMs.workers} (raw: ${r.cpuMs.raw} + ${r.cpuMs.rawPeers})`,
  );
  return r;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values: a } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      modes: { type: 'string' },
      layouts: { type: 'string' },
      workers: { type: 'string' },
      rounds: { type: 'string' },
      floats: { type: 'string' },
    },
  });
  const list = (v: string | undefined): string[] | undefined => v?.split(',').map((s) => s.trim());
  const floats = a.floats ? Number(a.floats) : 9_200_000;
  console.log(`Parameter exchange, ${(floats / 1e6).toFixed(1)} M floats per worker each way (loopback):`);
  const res = await benchExchange({
    quick: a.quick,
    floats,
    ...(a.modes ? { modes: list(a.modes) as ExchangeMode[] } : {}),
    ...(a.layouts ? { layouts: list(a.layouts) as ExchangeLayout[] } : {}),
    ...(a.workers ? { workers: list(a.workers)!.map(Number) } : {}),
    ...(a.rounds ? { rounds: Number(a.rounds) } : {}),
  });
  console.log(JSON.stringify(res));
}
