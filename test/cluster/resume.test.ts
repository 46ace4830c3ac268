import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunEvent } from '@dptrain/core';
import { connectObserver, type ObserverConnection } from '@dptrain/client';
import { dptrain, makeSceneDir, tinyFlags, waitFor, type Proc, freePort } from './fixtures.testutil.js';

/**
 * `kill -9` of the coordinator process mid-run, then `dptrain coordinator --resume RUN_DIR` on the same
 * address: the workers reconnect by themselves, the run reaches the same final step count, and the steps
 * replayed from the checkpoint have the losses they had before the crash (training continues, not restarts).
 * An observer connection (the dashboard's) watches both coordinator processes.
 */
const TOKEN = 'resume-token';
const procs: Proc[] = [];
let observer: ObserverConnection | undefined;

afterAll(() => {
  observer?.close();
  for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
});

describe('coordinator crash and --resume', () => {
  it('continues from the checkpoint after kill -9', { timeout: 300_000 }, async () => {
    const dir = await makeSceneDir({ perClass: 12, test: 6 });
    const runDir = mkdtempSync(join(tmpdir(), 'dp-resume-run-'));
    const port = await freePort();
    const url = `ws://127.0.0.1:${port}`;
    const EPOCHS = 4;
    const STEPS = EPOCHS * Math.ceil(27 / 8);
    const args = [
      'coordinator',
      ...tinyFlags(dir, { epochs: EPOCHS, lr: 0.01, patience: 100, 'checkpoint-every': 3 }),
      '--listen',
      `127.0.0.1:${port}`,
      '--min-workers',
      '2',
    ];
    const env = { DPTRAIN_TOKEN: TOKEN };
    const first = dptrain([...args, '--out', runDir], env);
    procs.push(first);
    await waitFor(first, (o) => o.includes('listening on'), 60_000, 'coordinator start');

    // one observer sees both coordinator processes: events of each connection are kept apart
    const byConnection: RunEvent[][] = [];
    for (let i = 0; ; i++) {
      try {
        observer = await connectObserver({
          url,
          token: TOKEN,
          onEvent: (e) => byConnection[byConnection.length - 1]!.push(e),
          onStatus: (s) => s === 'connected' && byConnection.push([]),
        });
        break;
      } catch (err) {
        if (i > 50) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    for (let i = 0; i < 2; i++) procs.push(dptrain(['worker', '--connect', url, '--data', dir, '--backend', 'cpu'], env));

    // crash after a checkpoint, a step or two past it
    const steps = () => byConnection.flat().filter((e) => e.type === 'step_completed') as Extract<RunEvent, { type: 'step_completed' }>[];
    const ckpts = () => byConnection.flat().filter((e) => e.type === 'checkpoint_written') as Extract<RunEvent, { type: 'checkpoint_written' }>[];
    const t0 = Date.now();
    while (!(ckpts().some((c) => c.step >= 6) && steps().some((s) => s.step >= 8))) {
      if (Date.now() - t0 > 150_000 || first.child.exitCode !== null) throw new Error(`no checkpoint at step 6:\n${first.output().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    first.child.kill('SIGKILL');
    await first.exited;
    const before = steps();
    const lastCkpt = Math.max(...ckpts().map((c) => c.step));
    expect(before.length).toBeGreaterThan(lastCkpt); // some steps were done after the checkpoint and are lost
    expect(existsSync(join(runDir, 'report.json'))).toBe(false);

    const second = dptrain([...args, '--resume', runDir], env);
    procs.push(second);
    const code = await second.exited;
    expect(code, second.output().slice(-3000)).toBe(0);
    const report = JSON.parse(readFileSync(join(runDir, 'report.json'), 'utf8')) as { steps: number };
    expect(report.steps).toBe(STEPS);

    // the observer reconnected to the new process and saw it resume from the checkpoint
    await new Promise((r) => setTimeout(r, 300));
    const after = (byConnection[byConnection.length - 1] ?? []).filter((e) => e.type === 'step_completed') as Extract<RunEvent, { type: 'step_completed' }>[];
    expect(byConnection.length).toBeGreaterThanOrEqual(2);
    expect(after[0]?.step).toBe(lastCkpt + 1);
    expect(after[after.length - 1]?.step).toBe(STEPS);
    // replayed steps: same batches, same weights, so the same loss as before the crash
    for (const s of after) {
      const old = before.find((b) => b.step === s.step);
      if (old) expect(Math.abs(old.loss - s.loss)).toBeLessThan(1e-4);
    }
    expect(after.filter((s) => before.some((b) => b.step === s.step)).length).toBeGreaterThan(0);

    // the workers were told the run is over and left by themselves
    for (const w of procs.slice(1, 3)) {
      const c = await Promise.race([w.exited, new Promise((r) => setTimeout(() => r('timeout'), 15_000))]);
      expect(c, w.output().slice(-2000)).toBe(0);
      expect(w.output()).toContain('run_complete');
    }
  });
});
