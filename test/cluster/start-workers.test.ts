import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EventBus, type RunEvent } from '@dptrain/core';
import { runCoordinator } from '../../packages/coordinator/src/cluster/index.js';
import { dptrain, makeSceneDir, tinyHeadRunConfig, type Proc } from './fixtures.testutil.js';

/**
 * `--start-workers N` beside `--min-workers K` (Horovod's `-np` and `--min-np`): the first step waits for N
 * workers, however late the last one comes; later steps would go on with K.
 */
const TOKEN = 'start-workers-token-5c1d9e0a7b';
const procs: Proc[] = [];

afterAll(() => {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
});

describe('start workers', () => {
  it('the first step waits for --start-workers workers although --min-workers is 1', { timeout: 300_000 }, async () => {
    const dir = await makeSceneDir({ perClass: 8, test: 3 });
    const runDir = mkdtempSync(join(tmpdir(), 'dp-start-run-'));
    const config = tinyHeadRunConfig(dir, [8, 8, 16, 16, 16]);
    const bus = new EventBus();
    const events: RunEvent[] = [];
    bus.on((e) => events.push(e));
    const worker = (name: string, url: string): void => {
      procs.push(dptrain(['worker', '--connect', url, '--data', dir, '--backend', 'cpu', '--name', name], { DPTRAIN_TOKEN: TOKEN }));
    };
    let url = '';
    // the second worker starts only once the first is in and the coordinator says it waits for one more
    bus.on((e) => {
      if (e.type === 'waiting_for_workers' && e.connected === 1 && procs.length === 1) worker('late', url);
    });
    const { summary } = await runCoordinator({
      config,
      runDir,
      token: TOKEN,
      bus,
      minWorkers: 1,
      startWorkers: 2,
      decodeOnValidate: false,
      onListening: (u) => {
        url = u;
        worker('early', u);
      },
    });
    const waits = events.filter((e): e is Extract<RunEvent, { type: 'waiting_for_workers' }> => e.type === 'waiting_for_workers');
    expect(waits.map((e) => [e.connected, e.required])).toEqual([
      [0, 2],
      [1, 2],
    ]);
    const steps = events.filter((e): e is Extract<RunEvent, { type: 'step_completed' }> => e.type === 'step_completed');
    expect(steps.length).toBeGreaterThan(0);
    expect(steps[0]!.workers).toHaveLength(2);
    expect(summary.workersJoined).toBe(2);
    for (const e of summary.epochs) expect(e.duplicates).toBe(0);
    for (const p of procs) {
      const c = await Promise.race([p.exited, new Promise((r) => setTimeout(() => r('timeout'), 15_000))]);
      expect(c, p.output().slice(-1000)).toBe(0);
    }
  });
});
