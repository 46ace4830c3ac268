import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '@dptrain/core';
import { JsonlTail } from '../deploy/jsonl-tail.testutil.js';
import { dptrain, makeSceneDir, tinyFlags, waitFor, type Proc } from './fixtures.testutil.js';
import { killProcessesWith, processesWith, waitNoProcessWith } from '../helpers/processes.testutil.js';

/**
 * `dptrain single` as a user runs it, with real local worker processes on loopback: a worker killed with
 * `kill -9` mid-epoch is restarted (`--max-restarts`), the next loss once the budget is used up leaves the run
 * going on with the survivors; Ctrl-C / SIGTERM of the parent write a final checkpoint and stop the workers;
 * `kill -9` of the parent leaves no worker behind either. Every check of leftovers reads /proc.
 */
type Ev = { event: string; msg?: string; step?: number; level?: string; worker?: { id: string }; [k: string]: unknown };
const markers: string[] = [];
const procs: Proc[] = [];

afterAll(() => {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  for (const m of markers) killProcessesWith(m);
});

/** The local worker processes of a run (not its agent), found by its (unique) data directory. */
const workersOf = (dataDir: string) =>
  processesWith(dataDir).filter((p) => p.cmdline.includes(' worker --connect ') && !p.cmdline.includes('--nproc-per-node'));
/** The run's one local agent. */
const agentsOf = (dataDir: string) => processesWith(dataDir).filter((p) => p.cmdline.includes('--nproc-per-node'));

function startSingle(dataDir: string, runDir: string, extra: string[], flags: Record<string, string | number | boolean> = {}): Proc {
  markers.push(dataDir);
  const p = dptrain([
    'single',
    ...tinyFlags(dataDir, { patience: 100, ...flags }),
    '--backend',
    'cpu',
    '--plain',
    '--no-charts',
    '--log-every',
    '1',
    '--out',
    runDir,
    ...extra,
  ]);
  procs.push(p);
  return p;
}

const exited = (p: Proc, ms: number): Promise<number | null | 'timeout'> =>
  Promise.race([p.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms))]);

describe('dptrain single: lost workers, signals, a dead parent (real processes)', () => {
  it('kill -9 of one of 3 workers mid-epoch: restarted; the next loss past --max-restarts goes on with the survivors; every sample once', {
    timeout: 400_000,
  }, async () => {
    const dir = await makeSceneDir({ perClass: 12, test: 9 });
    const runDir = mkdtempSync(join(tmpdir(), 'dp-single-kill-'));
    const run = startSingle(dir, runDir, ['--workers', '3', '--max-restarts', '1'], { epochs: 40, 'no-cache': true, 'checkpoint-every': 0 });
    const log = new JsonlTail<Ev>(join(runDir, 'run.log.jsonl'));
    const abort = () => (run.child.exitCode !== null ? `single exited (${run.child.exitCode}):\n${run.output().slice(-3000)}` : undefined);
    const joins = () => log.records.filter((e) => e.event === 'worker_joined').length;

    // the coordinator and one agent with three workers, training: kill one worker mid-epoch
    await log.waitFor((e) => e.event === 'step_completed' && (e.step ?? 0) >= 3, { timeoutMs: 200_000, abort });
    expect(joins()).toBe(1); // one connection: the agent's
    expect(agentsOf(dir)).toHaveLength(1);
    const first = workersOf(dir);
    expect(first, JSON.stringify(first)).toHaveLength(3);
    process.kill(first[0]!.pid, 'SIGKILL');
    // the agent restarts it (its lines reach the run log) and the replacement joins the agent
    await log.waitFor((e) => e.event === 'log' && /restarting it \(restart 1 of 1/.test(e.msg ?? ''), { timeoutMs: 30_000, abort });
    await log.waitFor((e) => e.event === 'log' && /local worker \d restarted as pid \d+/.test(e.msg ?? ''), { timeoutMs: 30_000, abort });
    await waitFor(run, (o) => /joined as w4 at step \d+/.test(o), 120_000, 'the replacement joins');
    const stepAtRejoin = Math.max(...log.records.filter((e) => e.event === 'step_completed').map((e) => e.step ?? 0));
    await log.waitFor((e) => e.event === 'step_completed' && (e.step ?? 0) > stepAtRejoin + 2, { timeoutMs: 60_000, abort });

    // a second loss: the budget (1) is used up, so the run goes on with the two survivors and says so
    const second = workersOf(dir);
    expect(second).toHaveLength(3);
    process.kill(second[1]!.pid, 'SIGKILL');
    await log.waitFor((e) => e.event === 'log' && /restart budget is used up.*goes on with 2 of 3 workers/.test(e.msg ?? ''), { timeoutMs: 30_000, abort });
    const lostAt = log.records.length;
    expect(workersOf(dir)).toHaveLength(2);

    const code = await exited(run, 300_000);
    expect(code, run.output().slice(-3000)).toBe(0);
    log.poll();
    // steps went on after the second loss
    const after = log.records.slice(lostAt).filter((e) => e.event === 'step_completed');
    expect(after.length).toBeGreaterThan(0);
    // the ledger: every training sample of every epoch counted exactly once
    const cluster = JSON.parse(readFileSync(join(runDir, 'cluster.json'), 'utf8')) as {
      epochs: { counted: number; distinct: number; duplicates: number }[];
      workersLost: unknown[];
    };
    expect(cluster.epochs).toHaveLength(40);
    for (const e of cluster.epochs) expect(e).toEqual(expect.objectContaining({ counted: 27, distinct: 27, duplicates: 0 }));
    // the losses stayed inside the agent: the coordinator never lost its one peer
    expect(cluster.workersLost).toEqual([]);
    // submission.csv has every test row
    const testNames = readFileSync(join(dir, 'test.csv'), 'utf8').trim().split('\n').slice(1);
    const rows = readFileSync(join(runDir, 'submission.csv'), 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split(',')[0]);
    expect(rows.sort()).toEqual([...testNames].sort());
    // --plain: the workers' own lines still reach the terminal as they were
    expect(run.output()).toMatch(/^dptrain worker: backend cpu/m);
    // no dptrain process of this run is left
    expect(await waitNoProcessWith(dir, 10_000)).toEqual([]);
  });

  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    it(`${sig} of the parent: the step completes, a final checkpoint is written, no worker is left; --resume finishes the run`, {
      timeout: 300_000,
    }, async () => {
      const dir = await makeSceneDir({ perClass: 12, test: 6 });
      const runDir = mkdtempSync(join(tmpdir(), `dp-single-${sig}-`));
      // checkpoints far apart: only the stop's own checkpoint can hold the steps done
      const flags = { epochs: 12, 'no-cache': true, 'checkpoint-every': 1000 };
      const run = startSingle(dir, runDir, ['--workers', '2'], flags);
      const log = new JsonlTail<Ev>(join(runDir, 'run.log.jsonl'));
      const abort = () => (run.child.exitCode !== null ? `single exited (${run.child.exitCode}):\n${run.output().slice(-3000)}` : undefined);
      const seen = await log.waitFor((e) => e.event === 'step_completed' && (e.step ?? 0) >= 5, { timeoutMs: 200_000, abort });
      expect(workersOf(dir)).toHaveLength(2);
      run.child.kill(sig);
      const code = await exited(run, 60_000);
      expect(code, run.output().slice(-3000)).toBe(sig === 'SIGINT' ? 130 : 143);
      expect(run.output()).toMatch(new RegExp(`stopped by ${sig} after step \\d+: checkpoint written`));
      const ckpt = await readCheckpoint(runDir);
      expect(ckpt?.step).toBeGreaterThanOrEqual(seen.step!);
      log.poll();
      const last = Math.max(...log.records.filter((e) => e.event === 'step_completed').map((e) => e.step!));
      expect(ckpt?.step).toBe(last); // nothing done is lost
      expect(existsSync(join(runDir, 'report.json'))).toBe(false);
      expect(await waitNoProcessWith(dir, 10_000)).toEqual([]);

      if (sig === 'SIGTERM') {
        // and the run goes on from there
        const again = dptrain([
          'single',
          ...tinyFlags(dir, { patience: 100, ...flags }),
          '--backend',
          'cpu',
          '--plain',
          '--no-charts',
          '--workers',
          '2',
          '--resume',
          runDir,
        ]);
        procs.push(again);
        expect(await exited(again, 250_000), again.output().slice(-3000)).toBe(0);
        expect(again.output()).toContain(`resuming from step ${ckpt!.step}`);
        expect(await waitNoProcessWith(dir, 10_000)).toEqual([]);
      }
    });
  }

  it('kill -9 of the parent: its local workers exit by themselves within seconds', { timeout: 300_000 }, async () => {
    const dir = await makeSceneDir({ perClass: 12, test: 6 });
    const runDir = mkdtempSync(join(tmpdir(), 'dp-single-orphan-'));
    const run = startSingle(dir, runDir, ['--workers', '2'], { epochs: 30, 'no-cache': true });
    const log = new JsonlTail<Ev>(join(runDir, 'run.log.jsonl'));
    const abort = () => (run.child.exitCode !== null ? `single exited (${run.child.exitCode}):\n${run.output().slice(-3000)}` : undefined);
    await log.waitFor((e) => e.event === 'step_completed' && (e.step ?? 0) >= 3, { timeoutMs: 200_000, abort });
    const workers = workersOf(dir);
    expect(workers).toHaveLength(2);
    run.child.kill('SIGKILL');
    await run.exited;
    const t0 = Date.now();
    const left = await waitNoProcessWith(dir, 10_000);
    expect(left, JSON.stringify(left)).toEqual([]);
    console.log(`orphans: both workers gone ${Date.now() - t0} ms after kill -9 of the parent`);
  });
});

describe('dptrain train and dptrain coordinator on a signal', () => {
  it('SIGHUP of dptrain train writes a final checkpoint at the last step done and exits 129', { timeout: 200_000 }, async () => {
    const dir = await makeSceneDir({ perClass: 12, test: 6 });
    const runDir = mkdtempSync(join(tmpdir(), 'dp-train-hup-'));
    const run = dptrain([
      'train',
      ...tinyFlags(dir, { patience: 100, epochs: 30, 'no-cache': true, 'checkpoint-every': 1000 }),
      '--backend',
      'cpu',
      '--log-every',
      '1',
      '--out',
      runDir,
    ]);
    procs.push(run);
    await waitFor(run, (o) => /step 5\b/.test(o), 150_000, 'five steps');
    run.child.kill('SIGHUP');
    expect(await exited(run, 60_000), run.output().slice(-3000)).toBe(129);
    const m = /stopped by SIGHUP after step (\d+): checkpoint written/.exec(run.output());
    expect(m, run.output().slice(-2000)).not.toBeNull();
    expect((await readCheckpoint(runDir))?.step).toBe(Number(m![1]));
    expect(Number(m![1])).toBeGreaterThanOrEqual(5);
  });

  it('SIGTERM of dptrain coordinator: checkpoint, no bye; its remote worker keeps retrying, rejoins the restarted coordinator (--resume) and the run completes', {
    timeout: 300_000,
  }, async () => {
    const dir = await makeSceneDir({ perClass: 12, test: 6 });
    const runDir = mkdtempSync(join(tmpdir(), 'dp-coord-term-'));
    markers.push(dir);
    const { createServer } = await import('node:net');
    const port = await new Promise<number>((res) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => res(p));
      });
    });
    const env = { DPTRAIN_TOKEN: 'coord-term-token' };
    const args = [
      'coordinator',
      ...tinyFlags(dir, { patience: 100, epochs: 12, 'no-cache': true, 'checkpoint-every': 1000 }),
      '--listen',
      `127.0.0.1:${port}`,
      '--plain',
      '--no-charts',
      '--resume',
      runDir,
    ];
    const first = dptrain(args, env);
    procs.push(first);
    await waitFor(first, (o) => o.includes('listening on'), 60_000, 'coordinator start');
    const worker = dptrain(['worker', '--connect', `ws://127.0.0.1:${port}`, '--data', dir, '--backend', 'cpu', '--give-up-after', '120'], env);
    procs.push(worker);
    const log = new JsonlTail<Ev>(join(runDir, 'run.log.jsonl'));
    await log.waitFor((e) => e.event === 'step_completed' && (e.step ?? 0) >= 5, {
      timeoutMs: 150_000,
      abort: () => (first.child.exitCode !== null ? first.output() : undefined),
    });
    first.child.kill('SIGTERM');
    expect(await exited(first, 60_000), first.output().slice(-3000)).toBe(143);
    const ckpt = await readCheckpoint(runDir);
    expect(ckpt?.step).toBeGreaterThanOrEqual(5);
    // no bye: the worker did not take the stop for the end of the run
    await new Promise((r) => setTimeout(r, 1500));
    expect(worker.child.exitCode, worker.output()).toBeNull();
    expect(worker.output()).not.toContain('run_complete');

    // the same command line again: it resumes, and the worker rejoins by itself
    const second = dptrain(args, env);
    procs.push(second);
    expect(await exited(second, 250_000), second.output().slice(-3000)).toBe(0);
    expect(second.output()).toContain(`resuming from step ${ckpt!.step}`);
    expect(await exited(worker, 20_000), worker.output().slice(-2000)).toBe(0);
    expect(worker.output()).toContain('run_complete');
    expect(await waitNoProcessWith(dir, 10_000)).toEqual([]);
  });
});

describe('dptrain worker --give-up-after', () => {
  it('a worker whose coordinator is gone retries for the given time, then exits 2 saying why', { timeout: 60_000 }, async () => {
    const w = dptrain(['worker', '--connect', 'ws://127.0.0.1:9', '--backend', 'cpu', '--give-up-after', '2'], { DPTRAIN_TOKEN: 't' });
    procs.push(w);
    await waitFor(w, (o) => o.includes('cannot reach'), 30_000, 'first retry');
    const t0 = Date.now();
    expect(await exited(w, 30_000), w.output()).toBe(2);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(w.output()).toMatch(/gave_up: no coordinator at ws:\/\/127\.0\.0\.1:9 for 2 s \(--give-up-after\)/);
  });
});
