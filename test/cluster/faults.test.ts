import { readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EventBus, parseRunConfig, type RunEvent } from '@dptrain/core';
import { runCoordinator, type ClusterServer } from '../../packages/coordinator/src/cluster/index.js';
import { dptrain, killAll, makeSceneDir, tinyClusterConfig, type Proc, waitForWorkers } from './fixtures.testutil.js';

/**
 * Three real worker processes; mid-step, one is killed with SIGKILL and another is frozen with SIGSTOP
 * (silent: declared lost by heartbeat), then thawed (it reconnects and joins mid-run). The run must finish
 * by itself with every training sample of every epoch counted exactly once and a complete submission.
 */
const TOKEN = 'faults-token';
const LOST_AFTER = 2000;
const HEARTBEAT = 400;
const procs: Proc[] = [];

afterAll(() => killAll(procs.filter((p) => p.child.exitCode === null)));

function waitPending(server: ClusterServer, name: string, timeoutMs = 30_000): Promise<string> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const poll = (): void => {
      const w = server.workers.find((p) => p.info?.host === name);
      if (w && w.hasPending()) return resolve(w.id);
      if (Date.now() - t0 > timeoutMs) return reject(new Error(`worker ${name} never got a request`));
      setImmediate(poll);
    };
    poll();
  });
}

describe('faults (real processes, loopback)', () => {
  it('survives kill -9 and a frozen worker mid-step; every sample counted once', { timeout: 300_000 }, async () => {
    const dir = await makeSceneDir({ perClass: 12, test: 9 });
    const runDir = mkdtempSync(join(tmpdir(), 'dp-faults-run-'));
    const config = parseRunConfig({
      dataDir: dir,
      backbone: { kind: 'tiny-vgg', inputSize: [32, 32], tinyWidths: [4, 4, 8, 8, 8] },
      preprocess: 'unit',
      head: { units: 8, dropout: 0 },
      batchSize: 8,
      microBatch: 2, // 4 micro-batches a step: all three workers take part
      headPhase: { epochs: 10, learningRate: 1e-2 },
      fineTunePhase: { epochs: 0, learningRate: 1e-5, unfreeze: 'block5' },
      patience: 100,
      validationSplit: 0.25,
      checkpointEvery: 0,
      cacheFeatures: false, // real forward/backward passes, so steps take long enough for the rejoin to land mid-run
      precision: 'fp32', // the workers run the cpu backend
    });
    const bus = new EventBus();
    const events: (RunEvent & { at: number })[] = [];
    bus.on((e) => events.push({ ...e, at: Date.now() }));
    const byName = new Map<string, Proc>();
    let server!: ClusterServer;
    let killedAt = 0;
    let stoppedAt = 0;
    let thawedAt = 0;
    const faults: Promise<void>[] = [];
    bus.on((e) => {
      // thaw the frozen worker as soon as it is declared lost: it must notice and rejoin by itself
      if (e.type === 'worker_lost' && stoppedAt && !thawedAt && e.reason.includes('silent')) {
        thawedAt = Date.now();
        byName.get('k2')!.child.kill('SIGCONT');
      }
      if (e.type !== 'step_completed') return;
      if (e.step === 3 && !killedAt) {
        faults.push(
          waitPending(server, 'k1').then(() => {
            killedAt = Date.now();
            byName.get('k1')!.child.kill('SIGKILL');
          }),
        );
      }
      if (e.step === 6 && !stoppedAt) {
        faults.push(
          waitPending(server, 'k2').then(() => {
            stoppedAt = Date.now();
            byName.get('k2')!.child.kill('SIGSTOP');
          }),
        );
      }
    });

    const { result, summary } = await runCoordinator({
      config,
      runDir,
      token: TOKEN,
      bus,
      minWorkers: 1,
      protocol: { lostAfterMs: LOST_AFTER, heartbeatIntervalMs: HEARTBEAT },
      decodeOnValidate: false,
      onListening: async (url, s) => {
        server = s;
        for (const name of ['k1', 'k2', 'k3']) {
          const p = dptrain(
            ['worker', '--connect', url, '--data', dir, '--backend', 'cpu', '--name', name, '--heartbeat-ms', String(HEARTBEAT), '--lost-after-ms', '10000'],
            { DPTRAIN_TOKEN: TOKEN },
          );
          procs.push(p);
          byName.set(name, p);
        }
        await waitForWorkers(
          s,
          () => s.workers.length >= 3,
          () => `only ${s.workers.length} workers joined`,
          { output: () => procs.map((p) => p.output()).join('\n') },
        );
      },
    });
    await Promise.all(faults);

    // the run finished by itself, with all its steps
    const stepsPerEpoch = Math.ceil(27 / 8);
    expect(result.halted).toBe(false);
    expect(result.steps).toBe(10 * stepsPerEpoch);
    // every training sample of every epoch counted exactly once
    expect(summary.epochs).toHaveLength(10);
    for (const e of summary.epochs) expect(e).toMatchObject({ counted: 27, distinct: 27, duplicates: 0 });
    const onDisk = JSON.parse(readFileSync(join(runDir, 'cluster.json'), 'utf8')) as typeof summary;
    expect(onDisk.epochs).toEqual(summary.epochs);

    // kill -9: lost at once (socket closed); the frozen worker: lost by heartbeat within LOST_AFTER (+ one tick)
    const lost = events.filter((e): e is Extract<RunEvent, { type: 'worker_lost' }> & { at: number } => e.type === 'worker_lost');
    const k1Lost = lost.find((e) => e.reason.includes('closed'));
    const k2Lost = lost.find((e) => e.reason.includes('silent'));
    expect(k1Lost, JSON.stringify(lost)).toBeDefined();
    expect(k2Lost, JSON.stringify(lost)).toBeDefined();
    expect(k1Lost!.at - killedAt).toBeLessThan(5000);
    // liveness is checked every LOST_AFTER/20: declared lost within LOST_AFTER of the last frame (+ scheduling lag on a loaded CI machine)
    expect(k2Lost!.at - stoppedAt).toBeLessThan(LOST_AFTER + 1500);
    expect(k2Lost!.at - stoppedAt).toBeGreaterThanOrEqual(LOST_AFTER - HEARTBEAT);

    // the thawed worker reconnected by itself, joined mid-run and took part in later steps
    const joins = events.filter((e): e is Extract<RunEvent, { type: 'worker_joined' }> & { at: number } => e.type === 'worker_joined');
    const rejoin = joins.find((e) => e.worker.host === 'k2' && e.at >= thawedAt);
    expect(rejoin, `joins: ${JSON.stringify(joins.map((j) => j.worker))}`).toBeDefined();
    const later = events.filter((e) => e.type === 'step_completed' && e.at > rejoin!.at) as Extract<RunEvent, { type: 'step_completed' }>[];
    console.log(`faults: rejoin ${rejoin!.at - thawedAt} ms after the thaw, ${later.length} steps after it`);
    expect(
      later.some((e) => e.workers.some((w) => w.id === rejoin!.worker.id)),
      `${later.length} steps after the rejoin (${rejoin!.at - thawedAt} ms after the thaw; steps at ${events
        .filter((e) => e.type === 'step_completed')
        .map((e) => e.at - thawedAt)
        .join(',')})`,
    ).toBe(true);

    // report.json names every worker that joined, with the backend and device it really ran on
    const report = JSON.parse(readFileSync(join(runDir, 'report.json'), 'utf8')) as { workerDetails: { id: string; backend: string; device: string }[] };
    expect(report.workerDetails.length).toBeGreaterThanOrEqual(3);
    for (const w of report.workerDetails) {
      expect(w.backend).toMatch(/^(wasm|cpu|native|tensorflow|tensorflow-gpu)$/);
      expect(w.device.length).toBeGreaterThan(0);
    }

    // the submission covers every test image exactly once
    const testNames = readFileSync(join(dir, 'test.csv'), 'utf8').trim().split('\n').slice(1);
    const rows = readFileSync(join(runDir, 'submission.csv'), 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split(',')[0]);
    expect(rows.sort()).toEqual([...testNames].sort());
  });
});
