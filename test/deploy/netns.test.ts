/**
 * A cluster across real network hops on one machine: the coordinator and three workers, each in a network
 * namespace of its own (own host name, own address, veth to a private bridge), real TCP between them, the real
 * `dptrain coordinator` / `dptrain worker` processes on tiny-vgg and a tiny synthetic data set.
 *
 * Run 1: mid-run one worker's cable is pulled (`ip link set ... down`): the coordinator declares it lost within
 *        the heartbeat limit (5 s, checked at the heartbeat tick) and the run finishes with the two survivors,
 *        every training sample counted exactly once per epoch.
 * Run 2: the cable is pulled, the worker is declared lost, the cable goes back in: the same worker process
 *        reconnects by itself, rejoins, and computes gradients in later steps.
 *
 * Needs root and iproute2 (as CI has); skipped otherwise, saying why. Namespaces are unique per run and removed
 * in afterAll, processes are killed by pid; every wait is bounded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { NetnsLab } from './netns-lab.testutil.js';
import { JsonlTail } from './jsonl-tail.testutil.js';

const probe = NetnsLab.probe();
if (!probe.ok) console.warn(`[netns] multi-host test skipped: ${probe.reason}`);

const ROOT = join(import.meta.dirname, '..', '..');
const DPTRAIN = join(ROOT, 'packages', 'cli', 'bin', 'dptrain.js');
const TOKEN = 'netns-test-token-0123456789abcdef';
/** Coordinator port of run 1 (run 2 uses the next one, so a lingering socket cannot get in the way). */
const PORT = 7420;
/** The coordinator's defaults: heartbeat every 1 s, a peer silent for 5 s is lost (checked at each heartbeat tick). */
const HEARTBEAT_MS = 1000;
const LOST_AFTER_MS = 5000;
/**
 * Tiny runs: tiny-vgg at 32 px, head phase only, 6 images per step (2 per worker), no charts or checkpoints.
 * Training goes on while at least 2 workers are connected.
 */
const TINY_RUN = [
  '--min-workers',
  '2',
  '--backbone',
  'tiny-vgg',
  '--input-size',
  '32x32',
  '--fine-tune-epochs',
  '0',
  '--batch-size',
  '6',
  '--micro-batch',
  '2',
  '--head-units',
  '16',
  '--no-charts',
  '--checkpoint-every',
  '0',
];
/** Bound on every wait for the cluster (generous: CI shares 2 cores between two test files). */
const WAIT_MS = 150_000;
/** Steps of run 1 (3 epochs x 5 steps). */
const RUN1_STEPS = 15;
/**
 * Run 1 must outlive the cut by the detection time whatever the backend's speed (on wasm the 15 steps take about a
 * second): a survivor's main thread blocks this long in the last step (the DPTRAIN_TEST_BLOCK_STEP hook; its heartbeat
 * thread keeps it alive), so the run cannot end before the cut worker is declared lost.
 */
const HOLD_LAST_STEP_MS = LOST_AFTER_MS + HEARTBEAT_MS + 4000;

type Ev = { event: string; time: number; [k: string]: unknown };
type StepWorker = { id: string; samples: number };
type Joined = Ev & { worker: { id: string; host: string; backend: string; device: string } };

/** One training run: a coordinator in `c`, workers in `w1..w3`, events read from the run's JSON log. */
class ClusterRun {
  readonly coordinator: ChildProcess;
  readonly workers = new Map<string, ChildProcess>();
  readonly events: JsonlTail<Ev>;
  readonly output: string[] = [];
  private exitCode: number | null | undefined;
  private readonly started: number;

  /** Logs a milestone with the seconds since the run started (shows where time goes on a loaded machine). */
  mark(what: string): void {
    console.log(`[netns] ${((Date.now() - this.started) / 1000).toFixed(1)} s: ${what}`);
  }

  constructor(
    private readonly lab: NetnsLab,
    readonly runDir: string,
    dataDir: string,
    trainingFlags: string[],
    port: number,
    /** Extra environment of the worker on each host (test hooks). */
    workerEnv: Partial<Record<string, Record<string, string>>> = {},
  ) {
    this.started = Date.now();
    const env = { ...process.env, DPTRAIN_TOKEN: TOKEN, FORCE_COLOR: '0' };
    this.coordinator = lab.spawn(
      'c',
      process.execPath,
      [DPTRAIN, 'coordinator', '--listen', `${lab.address('c')}:${port}`, '--data', dataDir, '--out', runDir, ...trainingFlags],
      { cwd: ROOT, env },
    );
    this.coordinator.on('exit', (code) => (this.exitCode = code));
    this.collect(this.coordinator, 'c');
    for (const host of ['w1', 'w2', 'w3']) {
      const w = lab.spawn(host, process.execPath, [DPTRAIN, 'worker', '--connect', `ws://${lab.address('c')}:${port}`, '--data', dataDir], {
        cwd: ROOT,
        env: { ...env, ...workerEnv[host] },
      });
      this.collect(w, host);
      this.workers.set(host, w);
    }
    this.events = new JsonlTail<Ev>(join(runDir, 'run.log.jsonl'));
  }

  private collect(child: ChildProcess, tag: string): void {
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) createInterface({ input: stream }).on('line', (line) => line.trim() && this.output.push(`[${tag}] ${line}`));
    }
  }

  /** Why waiting is pointless (the coordinator exited), if it is. */
  private readonly aborted = (): string | undefined =>
    this.exitCode === undefined ? undefined : `the coordinator exited with ${this.exitCode}\n${this.output.slice(-30).join('\n')}`;

  wait(match: (e: Ev) => boolean, timeoutMs = WAIT_MS): Promise<Ev> {
    return this.events.waitFor(match, { timeoutMs, abort: this.aborted });
  }

  /** Worker id the coordinator gave each join of the given host (in join order). */
  idsOf(host: string): string[] {
    return this.events.records.filter((e): e is Joined => e.event === 'worker_joined' && (e as Joined).worker.host === host).map((e) => e.worker.id);
  }

  async exited(timeoutMs = WAIT_MS): Promise<number | null> {
    if (this.exitCode !== undefined) return this.exitCode;
    return await new Promise<number | null>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`coordinator still running after ${timeoutMs} ms\n${this.output.slice(-30).join('\n')}`)), timeoutMs);
      this.coordinator.once('exit', (code) => {
        clearTimeout(t);
        resolve(code);
      });
    });
  }

  /** Kills every process of this run (by pid). */
  stop(): void {
    for (const p of [this.coordinator, ...this.workers.values()]) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  }
}

const steps = (run: ClusterRun): (Ev & { step: number; epoch: number; workers: StepWorker[] })[] =>
  run.events.records.filter((e) => e.event === 'step_completed') as (Ev & { step: number; epoch: number; workers: StepWorker[] })[];

describe.skipIf(!probe.ok)('multi-host cluster over network namespaces (root + iproute2)', () => {
  const lab = new NetnsLab({ hosts: ['c', 'w1', 'w2', 'w3'] });
  let work: string;
  let data: string;
  const runs: ClusterRun[] = [];

  beforeAll(async () => {
    NetnsLab.sweepStale();
    lab.up();
    work = mkdtempSync(join(tmpdir(), 'dptrain-netns-'));
    data = join(work, 'data');
    const { generateSyntheticScenes } = await import('@dptrain/core');
    // 6 classes x 6 = 36 labelled (30 train / 6 validation), 6 test images, 32 px.
    await generateSyntheticScenes(data, { perClass: 6, testPerClass: 1, size: 32, seed: 7 });
  });

  afterAll(async () => {
    for (const r of runs) r.stop();
    await lab.down();
    expect(lab.existing(), 'namespaces left behind').toEqual([]);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('declares a worker whose link is cut lost within 5 s, and finishes the run with the survivors', async () => {
    // 3 epochs x 5 steps of 6 images (2 per worker). Training goes on while at least 2 workers are connected.
    // The survivor on w1 holds the last step (see HOLD_LAST_STEP_MS), so the cut always lands mid-run.
    // (The hook counts steps from 0, as the step messages do; the run's events count from 1.)
    const hold = { DPTRAIN_TEST_BLOCK_STEP: String(RUN1_STEPS - 1), DPTRAIN_TEST_BLOCK_STEP_MS: String(HOLD_LAST_STEP_MS) };
    // It starts once all three are in (a slow start on a busy machine must not leave the third out until the end).
    const run = new ClusterRun(lab, join(work, 'run1'), data, [...TINY_RUN, '--epochs', '3', '--start-workers', '3'], PORT, { w1: hold });
    runs.push(run);
    try {
      // All three join from their own hosts, over the bridge.
      await run.wait(() => ['w1', 'w2', 'w3'].every((h) => run.idsOf(h).length === 1));
      run.mark('all three workers joined');
      // Each worker printed its backend and device at start, and the coordinator recorded the same at its join.
      for (const host of ['w1', 'w2', 'w3']) {
        const printed = run.output.map((l) => new RegExp(`^\\[${host}\\] dptrain worker: backend (\\S+) \\((.+)\\)$`).exec(l)).find((m) => m);
        expect(printed, `${host} printed its backend`).toBeDefined();
        const joined = run.events.records.find((e): e is Joined => e.event === 'worker_joined' && (e as Joined).worker.host === host)!;
        expect({ backend: joined.worker.backend, device: joined.worker.device }).toEqual({ backend: printed![1], device: printed![2] });
        run.mark(`${host} computes on ${joined.worker.backend}`);
      }
      const victim = run.idsOf('w3')[0]!;
      // Mid-run: after the first step in which all three computed.
      await run.wait((e) => e.event === 'step_completed' && (e.workers as StepWorker[]).length === 3);
      const cutAt = Date.now();
      lab.cut('w3');
      run.mark('link of w3 cut');

      const lost = await run.wait((e) => e.event === 'worker_lost' && e.id === victim);
      const detectMs = lost.time - cutAt;
      console.log(`[netns] run 1: ${victim} (host w3) declared lost ${detectMs} ms after its link was cut: ${String(lost.reason)}`);
      // The limit is 5 s of silence, checked at each heartbeat tick (silence began at or before the cut), plus up
      // to half a second of event-loop lag on a busy 2-core machine.
      expect(detectMs).toBeGreaterThan(0);
      expect(detectMs).toBeLessThanOrEqual(LOST_AFTER_MS + HEARTBEAT_MS + 500);
      expect(String(lost.reason)).toMatch(/silent/);

      run.mark(`${victim} declared lost`);
      expect(await run.exited(), run.output.slice(-20).join('\n')).toBe(0);
      run.mark('coordinator exited');
      run.events.poll();
      const done = run.events.records.find((e) => e.event === 'run_completed');
      expect(done, 'run_completed').toBeDefined();
      // Every step of the run happened; after the loss only the survivors computed.
      const all = steps(run);
      expect(all.map((s) => s.step)).toEqual(Array.from({ length: RUN1_STEPS }, (_, i) => i + 1));
      // The hold was in effect: w1 blocked in the last step (else this test would not show a mid-run cut on a fast backend).
      expect(run.output.join('\n')).toMatch(new RegExp(`^\\[w1\\] .*blocking the main thread for ${HOLD_LAST_STEP_MS} ms in step ${RUN1_STEPS - 1}$`, 'm'));
      const after = all.filter((s) => s.time > lost.time);
      expect(after.length).toBeGreaterThan(0);
      for (const s of after) expect(s.workers.map((w) => w.id).sort()).toEqual(run.idsOf('w1').concat(run.idsOf('w2')).sort());
      // No training sample lost or counted twice in any epoch, although a step lost a third of its workers.
      const ledger = JSON.parse(readFileSync(join(run.runDir, 'cluster.json'), 'utf8')) as {
        epochs: { counted: number; distinct: number; duplicates: number }[];
      };
      expect(ledger.epochs).toHaveLength(3);
      for (const e of ledger.epochs) expect(e).toMatchObject({ counted: 30, distinct: 30, duplicates: 0 });
      // And the answer covers every test image.
      const submission = readFileSync(join(run.runDir, 'submission.csv'), 'utf8').trim().split('\n');
      expect(submission).toHaveLength(1 + 6);
      expect(existsSync(join(run.runDir, 'report.json'))).toBe(true);
    } finally {
      run.stop(); // the cut-off worker is still retrying
      lab.restore('w3');
    }
  }, 300_000);

  it('lets the worker rejoin when its link comes back, and it computes in later steps', async () => {
    // Long enough that the rejoin happens mid-run; stopped once the rejoined worker has taken part.
    const run = new ClusterRun(lab, join(work, 'run2'), data, [...TINY_RUN, '--epochs', '200', '--patience', '1000'], PORT + 1);
    runs.push(run);
    try {
      await run.wait(() => ['w1', 'w2', 'w3'].every((h) => run.idsOf(h).length === 1));
      run.mark('all three workers joined');
      const first = run.idsOf('w3')[0]!;
      await run.wait((e) => e.event === 'step_completed' && (e.workers as StepWorker[]).length === 3);

      lab.cut('w3');
      const lost = await run.wait((e) => e.event === 'worker_lost' && e.id === first);
      lab.restore('w3');
      const restoredAt = Date.now();
      run.mark(`${first} declared lost; link restored`);

      // The same worker process (never restarted) reconnects with backoff and is admitted again.
      const rejoin = (await run.wait((e) => e.event === 'worker_joined' && (e as Joined).worker.host === 'w3' && e.time > lost.time)) as Joined;
      expect(run.workers.get('w3')!.exitCode).toBeNull();
      const again = rejoin.worker.id;
      run.mark(`w3 rejoined as ${again}`);
      console.log(`[netns] run 2: w3 lost as ${first}, rejoined as ${again} ${rejoin.time - restoredAt} ms after its link came back`);
      // It takes part: two later steps give it a share of the batch.
      await run.wait((e) => e.event === 'step_completed' && (e.workers as StepWorker[]).some((w) => w.id === again && w.samples > 0));
      const n = steps(run).length;
      await run.wait(() => steps(run).length >= n + 1);
      const later = steps(run).filter((s) => s.time > rejoin.time);
      expect(later.filter((s) => s.workers.some((w) => w.id === again && w.samples > 0)).length).toBeGreaterThanOrEqual(2);
      expect(later.at(-1)!.workers).toHaveLength(3);
    } finally {
      run.stop();
    }
  }, 300_000);
});
