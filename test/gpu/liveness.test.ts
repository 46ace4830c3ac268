import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EventBus, parseRunConfig, type RunEvent } from '@dptrain/core';
import { runCoordinator } from '../../packages/coordinator/src/cluster/index.js';
import { dptrain, makeSceneDir, tinyHeadRunConfig, type Proc } from '../cluster/fixtures.testutil.js';
import { processesMentioning } from '../helpers/processes.testutil.js';

/**
 * A real coordinator (in this process, on loopback) and one real worker process whose main thread blocks
 * synchronously for 15 s inside its first step (the DPTRAIN_TEST_BLOCK_STEP_MS hook), three times the 5 s
 * lost-after limit. Its heartbeat thread keeps it alive: the worker is not dropped and the step completes.
 * The control run without the thread (DPTRAIN_LIVENESS_THREAD=0) shows the same block does get the worker dropped.
 */
const TOKEN = 'liveness-token';
const BLOCK_MS = 15_000;
const procs: Proc[] = [];

afterAll(() => {
  for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
});

async function runWithBlockedStep(
  dir: string,
  env: Record<string, string>,
  workerArgs: string[] = [],
): Promise<{ events: RunEvent[]; steps: number; worker: Proc }> {
  const runDir = mkdtempSync(join(tmpdir(), 'dp-liveness-run-'));
  const config = tinyHeadRunConfig(dir, [4, 4, 8, 8, 8], { microBatch: 4 });
  const bus = new EventBus();
  const events: RunEvent[] = [];
  bus.on((e) => events.push(e));
  let worker!: Proc;
  const { result } = await runCoordinator({
    config,
    runDir,
    token: TOKEN,
    bus,
    minWorkers: 1,
    protocol: { lostAfterMs: 5000, heartbeatIntervalMs: 1000 },
    decodeOnValidate: false,
    onListening: async (url, s) => {
      worker = dptrain(['worker', '--connect', url, '--data', dir, '--backend', 'cpu', '--name', 'blocked', ...workerArgs], {
        DPTRAIN_TOKEN: TOKEN,
        DPTRAIN_TEST_BLOCK_STEP_MS: String(BLOCK_MS),
        ...env,
      });
      procs.push(worker);
      while (s.workers.length < 1) {
        if (worker.child.exitCode !== null) throw new Error(`worker exited:\n${worker.output()}`);
        await s.waitForJoin(1000);
      }
    },
  });
  await worker.exited;
  return { events, steps: result.steps, worker };
}

describe('heartbeats off the main thread (real processes, loopback)', () => {
  it('a 15 s synchronous block inside a step: the worker is not dropped and the step completes', { timeout: 300_000 }, async () => {
    const dir = await makeSceneDir({ perClass: 4, test: 3 });
    const { events, steps, worker } = await runWithBlockedStep(dir, {});
    expect(worker.output()).toContain(`blocking the main thread for ${BLOCK_MS} ms`);
    const lost = events.filter((e) => e.type === 'worker_lost');
    expect(lost, JSON.stringify(lost)).toEqual([]);
    const joins = events.filter((e) => e.type === 'worker_joined');
    expect(joins).toHaveLength(1);
    // every step of the epoch completed, the blocked one included, and took the block's time
    expect(steps).toBe(Math.ceil(9 / 8));
    const completed = events.filter((e): e is Extract<RunEvent, { type: 'step_completed' }> => e.type === 'step_completed');
    expect(completed.length).toBe(steps);
    expect(events.some((e) => e.type === 'run_completed')).toBe(true);
    expect(processesMentioning(dir)).toEqual([]);
  });

  it('a wedged main thread is still detected: past --stall-limit-ms the thread stops beating and the worker is lost', { timeout: 300_000 }, async () => {
    const dir = await makeSceneDir({ perClass: 4, test: 3 });
    const { events, worker } = await runWithBlockedStep(dir, {}, ['--stall-limit-ms', '3000']);
    expect(worker.output()).toMatch(/main thread made no progress for \d+ ms \(limit 3000 ms\): heartbeats stop/);
    const lost = events.filter((e): e is Extract<RunEvent, { type: 'worker_lost' }> => e.type === 'worker_lost');
    expect(
      lost.some((e) => e.reason.includes('silent')),
      JSON.stringify(lost),
    ).toBe(true);
    expect(processesMentioning(dir)).toEqual([]);
  });

  it('control: the same block without the heartbeat thread gets the worker dropped as silent', { timeout: 300_000 }, async () => {
    const dir = await makeSceneDir({ perClass: 4, test: 3 });
    const { events } = await runWithBlockedStep(dir, { DPTRAIN_LIVENESS_THREAD: '0' });
    const lost = events.filter((e): e is Extract<RunEvent, { type: 'worker_lost' }> => e.type === 'worker_lost');
    expect(
      lost.some((e) => e.reason.includes('silent')),
      JSON.stringify(lost),
    ).toBe(true);
    expect(processesMentioning(dir)).toEqual([]);
  });
});

describe('liveness connections are tied to their worker', () => {
  it('an attach with another key is refused (E_AUTH) and keeps nobody alive', async () => {
    const { ClusterServer } = await import('../../packages/coordinator/src/cluster/server.js');
    const { connectAndAuth } = await import('../../packages/client/src/connect.js');
    const server = new ClusterServer({ token: 't', config: parseRunConfig({ dataDir: '/nonexistent' }) });
    const url = await server.listen();
    try {
      const main = await connectAndAuth({ url, token: 't', role: 'worker' });
      expect(main.accepted.livenessKey).toBeInstanceOf(Uint8Array);
      const thread = await connectAndAuth({ url, token: 't', role: 'liveness' });
      const closed = new Promise<string>((r) => thread.ws.on('close', (_code, reason) => r(reason.toString())));
      thread.send({ type: 'attach', workerId: main.accepted.workerId!, key: new Uint8Array(main.accepted.livenessKey!.length) });
      expect(await closed).toMatch(/^E_AUTH/);
      expect(server.rejected.get('E_AUTH')).toBe(1);
      main.ws.close();
    } finally {
      await server.close();
    }
  });
});
