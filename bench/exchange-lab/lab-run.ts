/**
 * One exchange-lab cluster: the lab coordinator (lab-coordinator.ts) in the coordinator's namespace and, on each
 * host's namespace, either G synthetic workers (`star`), one agent with G local synthetic workers (`hierarchical`),
 * or that agent plus one `dptrain shard` of the sharded summation service (`sharded`: S = H shards, one per host).
 * Every process is the real protocol code; every byte between hosts crosses their veth links.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NetnsLab } from '../../test/deploy/netns-lab.testutil.js';
import { LineReader } from '../../test/deploy/lines.testutil.js';
import type { LabCoordinatorOptions } from './lab-coordinator.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The repository root (processes start there, so `--import tsx` resolves). */
export const LAB_ROOT = path.resolve(here, '..', '..');
const DPTRAIN = path.join(LAB_ROOT, 'packages', 'cli', 'bin', 'dptrain.js');
const SYNTHETIC_WORKER = path.join(here, 'synthetic-worker.ts');
const COORDINATOR = path.join(here, 'lab-coordinator.ts');

/** How the hosts reach the coordinator. */
export type LabTopology = 'star' | 'hierarchical' | 'sharded';

/** Options of {@link LabRun.start}. */
export interface LabRunOptions {
  /** The lab, already up (and shaped). Required. */
  lab: NetnsLab;
  /** The run's data directory, made by {@link createLabData}. Required. */
  dataDir: string;
  /** Host of the coordinator (a lab host of its own). Required. */
  coordinatorHost: string;
  /** Hosts that run workers. Required. */
  hosts: string[];
  /** Synthetic workers per host. Required. */
  workersPerHost: number;
  /** Required. */
  topology: LabTopology;
  /** Floats per gradient (and weights). Required. */
  floats: number;
  /** Timed steps (after one warm-up step). Required. */
  steps: number;
  /** Steps per epoch (batch x stepsPerEpoch at most LAB_SAMPLES). Default: as many as LAB_SAMPLES hold. */
  stepsPerEpoch?: number;
  /** Samples per step. Default: hosts x workersPerHost (one micro-batch each). */
  batch?: number;
  /** Micro-batch of the averaging tree. Default 1. */
  microBatch?: number;
  /**
   * Each synthetic worker's `--batch-capacity` (an agent's is the sum of its workers'). The bench sets the equal
   * share, so that every peer takes exactly its share whatever the measured rates' noise. Default: the worker's (64).
   */
  batchCapacity?: number;
  /** Coordinator port. Default 7420. */
  port?: number;
  /** Shared secret. Default: a fixed lab token. */
  token?: string;
  /** Wait for `go()` after the warm-up step. Default false. */
  waitForGo?: boolean;
  /** A silent peer is lost after this long, ms (coordinator and workers). Default 5000. */
  lostAfterMs?: number;
  /** Heartbeat interval, ms. Default 1000. */
  heartbeatMs?: number;
  /** Set in every process's environment (so a test can find them all in /proc). Default: none. */
  env?: Record<string, string>;
}

/** One line of the lab coordinator's stdout. */
export type LabEvent = { event: string; [k: string]: unknown };

const DEFAULT_TOKEN = 'exchange-lab-token-0123456789abcdef';

/** Labelled samples in the lab's data set (what one epoch's batches can cover). */
export const LAB_SAMPLES = 96;

/**
 * Writes the lab's data set: tiny synthetic scenes (6 classes x 16 labelled, 32 px). No image is ever read for
 * training (the replicas are synthetic); the workers only prove at join that they see the same data.
 */
export async function createLabData(dir: string): Promise<void> {
  const { generateSyntheticScenes } = await import('@dptrain/core');
  await generateSyntheticScenes(dir, { perClass: LAB_SAMPLES / 6, testPerClass: 1, size: 32, seed: 1 });
}

/** Whether `dptrain COMMAND --help` in this tree mentions `flag`. */
function cliHas(command: string, flag: string): boolean {
  try {
    return execFileSync(process.execPath, [DPTRAIN, command, '--help'], { encoding: 'utf8', timeout: 60_000 }).includes(flag);
  } catch {
    return false;
  }
}

/** Whether a topology can run with the code in this tree, and why not. */
export function topologyAvailable(topology: LabTopology): { ok: true } | { ok: false; reason: string } {
  if (topology === 'star') return { ok: true };
  if (!cliHas('worker', '--nproc-per-node')) return { ok: false, reason: '`dptrain worker` has no --nproc-per-node here (no per-node agent)' };
  if (topology === 'sharded' && !cliHas('shard', '--connect')) return { ok: false, reason: 'this tree has no `dptrain shard` (no sharded summation service)' };
  return { ok: true };
}

export class LabRun {
  readonly coordinator: ChildProcess;
  readonly peers: ChildProcess[] = [];
  /** The coordinator's events, in order. */
  readonly events: LabEvent[] = [];
  /** Last lines of every process's stderr (for failure messages). */
  readonly output: string[] = [];
  private readonly lines: LineReader;
  /** Starts the hosts' shards (sharded topology; nothing otherwise). */
  private startShards: () => void = () => undefined;

  private constructor(readonly options: LabRunOptions) {
    const o = options;
    const lab = o.lab;
    const port = o.port ?? 7420;
    const token = o.token ?? DEFAULT_TOKEN;
    const lostAfterMs = o.lostAfterMs ?? 5000;
    const heartbeatMs = o.heartbeatMs ?? 1000;
    const env = { ...process.env, ...o.env, DPTRAIN_TOKEN: token, FORCE_COLOR: '0' };
    const batch = o.batch ?? o.hosts.length * o.workersPerHost;
    const spec: LabCoordinatorOptions = {
      dataDir: o.dataDir,
      host: lab.address(o.coordinatorHost),
      port,
      token,
      peers: o.topology === 'star' ? o.hosts.length * o.workersPerHost : o.hosts.length,
      shards: o.topology === 'sharded' ? o.hosts.length : 0,
      batch,
      microBatch: o.microBatch ?? 1,
      steps: o.steps,
      stepsPerEpoch: o.stepsPerEpoch ?? Math.max(1, Math.floor(LAB_SAMPLES / batch)),
      waitForGo: o.waitForGo ?? false,
      lostAfterMs,
      heartbeatMs,
    };
    this.coordinator = lab.spawn(o.coordinatorHost, process.execPath, ['--import', 'tsx', COORDINATOR, JSON.stringify(spec)], {
      cwd: LAB_ROOT,
      env,
      stdin: true,
    });
    this.collect(this.coordinator, o.coordinatorHost);
    this.lines = new LineReader(this.coordinator.stdout!, (line) => {
      if (!line.startsWith('{')) return;
      const e = JSON.parse(line) as LabEvent;
      this.events.push(e);
      if (e.event === 'listening') this.startShards();
    });
    const url = `ws://${spec.host}:${port}`;
    const protocolArgs = ['--lost-after-ms', String(lostAfterMs), '--heartbeat-ms', String(heartbeatMs)];
    const capacityArgs = o.batchCapacity !== undefined ? ['--batch-capacity', String(o.batchCapacity)] : [];
    const workerArgs = (name: string): string[] => [
      SYNTHETIC_WORKER,
      '--connect',
      url,
      '--floats',
      String(o.floats),
      '--data',
      o.dataDir,
      '--name',
      name,
      ...protocolArgs,
      ...capacityArgs,
    ];
    for (const host of o.hosts) {
      if (o.topology === 'star') {
        for (let j = 0; j < o.workersPerHost; j++) {
          this.spawnPeer(host, process.execPath, ['--import', 'tsx', ...workerArgs(`${host}-w${j + 1}`)], env);
        }
      } else {
        const command = [process.execPath, '--import', 'tsx', SYNTHETIC_WORKER, '--floats', String(o.floats)].join(' ');
        const args = [
          DPTRAIN,
          'worker',
          '--connect',
          url,
          '--nproc-per-node',
          String(o.workersPerHost),
          '--data',
          o.dataDir,
          '--worker-command',
          command,
          '--name',
          host,
          ...capacityArgs,
        ];
        this.spawnPeer(host, process.execPath, args, env);
      }
    }
    // each host's shard serves the other hosts' agents on its own address; `dptrain shard` does not retry its
    // connection, so it starts once the coordinator listens
    this.startShards = () => {
      for (const host of o.topology === 'sharded' ? o.hosts : []) {
        this.spawnPeer(host, process.execPath, [DPTRAIN, 'shard', '--connect', url, '--listen', `${lab.address(host)}:0`, ...protocolArgs], env);
      }
    };
  }

  /** Starts the coordinator and the hosts' processes (they connect by themselves). */
  static start(options: LabRunOptions): LabRun {
    return new LabRun(options);
  }

  private spawnPeer(host: string, command: string, args: string[], env: NodeJS.ProcessEnv): void {
    const child = this.options.lab.spawn(host, command, args, { cwd: LAB_ROOT, env });
    this.collect(child, host);
    this.peers.push(child);
  }

  private collect(child: ChildProcess, tag: string): void {
    child.stderr?.on('data', (d: Buffer) => {
      for (const line of d.toString('utf8').split('\n')) {
        if (!line.trim()) continue;
        this.output.push(`[${tag}] ${line}`);
        if (this.output.length > 200) this.output.shift();
      }
    });
  }

  /** Resolves with the coordinator's next event of this kind (or rejects on its `error`, its exit or the timeout). */
  async next(event: string, timeoutMs: number): Promise<LabEvent> {
    const line = await this.lines
      .waitFor((l) => l.startsWith('{') && ['error', event].includes((JSON.parse(l) as LabEvent).event), timeoutMs)
      .catch((err: Error) => {
        const seen = this.events.slice(-5).map((e) => JSON.stringify(e).slice(0, 300));
        throw new Error(
          `exchange lab: no '${event}' from the coordinator (${err.message}); its last events:\n${seen.join('\n')}\n${this.output.slice(-20).join('\n')}`,
        );
      });
    const e = JSON.parse(line) as LabEvent;
    if (e.event === 'error') throw new Error(`exchange lab: the coordinator failed: ${String(e.message)}\n${this.output.slice(-20).join('\n')}`);
    return e;
  }

  /** Lets a run started with `waitForGo` time its steps. */
  go(): void {
    this.coordinator.stdin!.write('go\n');
  }

  /** Waits for every process of the run to exit (after `done`, the coordinator says `bye`), then kills what is left. */
  async finish(timeoutMs: number): Promise<void> {
    const all = [this.coordinator, ...this.peers];
    await Promise.race([
      Promise.all(all.map((c) => (c.exitCode !== null || c.signalCode !== null ? null : new Promise((r) => c.once('exit', r))))),
      new Promise((r) => setTimeout(r, timeoutMs)),
    ]);
    this.stop();
  }

  /** Kills every process of this run (by pid). */
  stop(): void {
    for (const c of [this.coordinator, ...this.peers]) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
}
