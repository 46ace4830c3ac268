import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EventBus, type RunEvent } from '@dptrain/core';
import { runCoordinator, type ClusterServer } from '../../packages/coordinator/src/cluster/index.js';
import { dptrain, makeSceneDir, tinyHeadRunConfig, type Proc, waitForWorkers } from './fixtures.testutil.js';

/**
 * Ctrl-C (SIGINT) of a worker while it computes a step: it says goodbye to the coordinator (which redoes
 * its share) and exits cleanly, instead of reporting `Layer ... is already disposed` as a failed task.
 */
const TOKEN = 'worker-stop-token-8e2b4f1d7c';
const procs: Proc[] = [];

afterAll(() => {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
});

function waitPending(server: ClusterServer, name: string, timeoutMs = 60_000): Promise<void> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const poll = (): void => {
      const w = server.workers.find((p) => p.info?.host === name);
      if (w && w.hasPending()) return resolve();
      if (Date.now() - t0 > timeoutMs) return reject(new Error(`worker ${name} never got a request`));
      setImmediate(poll);
    };
    poll();
  });
}

describe('stopping a worker', () => {
  it('a worker stopped mid-step says goodbye; the run finishes with the other', { timeout: 300_000 }, async () => {
    const dir = await makeSceneDir({ perClass: 12, test: 3, size: 64 });
    const runDir = mkdtempSync(join(tmpdir(), 'dp-stop-run-'));
    const config = tinyHeadRunConfig(dir, [8, 8, 16, 16, 16], {
      backbone: { kind: 'tiny-vgg', inputSize: [64, 64], tinyWidths: [8, 8, 16, 16, 16] },
      headPhase: { epochs: 2, learningRate: 1e-2 },
      patience: 100,
      cacheFeatures: false, // real forward/backward passes: the worker is busy computing most of the time
    });
    const bus = new EventBus();
    const events: RunEvent[] = [];
    bus.on((e) => events.push(e));
    const byName = new Map<string, Proc>();
    let stopped: Promise<void> | undefined;
    let server!: ClusterServer;
    bus.on((e) => {
      if (e.type === 'step_completed' && e.step === 2 && !stopped) {
        stopped = waitPending(server, 'stopper').then(() => {
          byName.get('stopper')!.child.kill('SIGINT');
        });
      }
    });
    const { result, summary } = await runCoordinator({
      config,
      runDir,
      token: TOKEN,
      bus,
      minWorkers: 1,
      // generous liveness limits: on a loaded machine no worker is lost for silence, only the stopped one leaves
      protocol: { lostAfterMs: 30_000 },
      decodeOnValidate: false,
      onListening: async (url, s) => {
        server = s;
        for (const name of ['stays', 'stopper']) {
          const p = dptrain(['worker', '--connect', url, '--data', dir, '--backend', 'cpu', '--name', name, '--lost-after-ms', '30000'], {
            DPTRAIN_TOKEN: TOKEN,
          });
          procs.push(p);
          byName.set(name, p);
        }
        await waitForWorkers(
          s,
          () => s.workers.length >= 2,
          () => `only ${s.workers.length} workers joined`,
          { output: () => procs.map((p) => p.output()).join('\n') },
        );
      },
    });
    await stopped;
    const stopper = byName.get('stopper')!;
    const code = await Promise.race([stopper.exited, new Promise((r) => setTimeout(() => r('timeout'), 30_000))]);
    const out = stopper.output();
    expect(code, out.slice(-2000)).toBe(0);
    expect(out).not.toMatch(/already disposed/);
    expect(out).not.toMatch(/E_WORKER/);
    expect(out).toMatch(/stopping: said goodbye to the coordinator/);
    const lost = events.filter((e): e is Extract<RunEvent, { type: 'worker_lost' }> => e.type === 'worker_lost');
    const stopperId = events.find((e): e is Extract<RunEvent, { type: 'worker_joined' }> => e.type === 'worker_joined' && e.worker.host === 'stopper')?.worker
      .id;
    expect(
      lost.filter((e) => e.id === stopperId).map((e) => e.reason),
      JSON.stringify(lost),
    ).toEqual([expect.stringMatching(/worker said bye: worker stopping/)]);
    expect(events.filter((e) => e.type === 'frame_rejected')).toEqual([]);
    // the run went on without it, every sample counted once
    expect(result.halted).toBe(false);
    for (const e of summary.epochs) expect(e).toMatchObject({ counted: 27, distinct: 27, duplicates: 0 });
    for (const p of procs) {
      const c = await Promise.race([p.exited, new Promise((r) => setTimeout(() => r('timeout'), 15_000))]);
      expect(c, p.output().slice(-1000)).toBe(0);
    }
  });
});
