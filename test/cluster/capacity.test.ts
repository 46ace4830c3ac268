import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDataset, type Dataset, type RunConfig, type RunEvent, type StepWorkerStat } from '@dptrain/core';
import { ClusterExecutor, ClusterServer } from '../../packages/coordinator/src/cluster/index.js';
import { dptrain, makeSceneDir, tinyClusterConfig, waitForWorkerNamed, type Proc } from './fixtures.js';
import { inProcessWeights, trainSteps } from './step-loop.js';
import { processesMentioning } from '../helpers/processes.js';

/**
 * Capacity- and throughput-weighted shares, on real worker processes over loopback (cpu backend, tiny VGG):
 * three workers with unequal `--batch-capacity` (4, 16, 64) and unequal speed (the one of capacity 16 waits
 * 40 ms per sample: test hook DPTRAIN_TEST_STEP_MS_PER_SAMPLE) train 20 Adam steps to the weights of one worker,
 * and of one process, bit for bit; no part exceeds a capacity (a worker refuses one that does, with
 * E_BATCH_CAPACITY); the slow worker ends with a smaller share than the fast one of the same or larger capacity;
 * a worker whose capacity cannot hold one micro-batch is refused at join.
 */
const TOKEN = 'capacity-token';
const STEPS = 20;
const B = 16;
const MICRO = 2;
const procs: Proc[] = [];
const events: RunEvent[] = [];
let server: ClusterServer;
let dir: string;
let dataset: Dataset;
let config: RunConfig;

function worker(name: string, capacity: number, env: Record<string, string> = {}): Proc {
  const p = dptrain(['worker', '--connect', server.url, '--data', dir, '--backend', 'cpu', '--name', name, '--batch-capacity', String(capacity)], {
    DPTRAIN_TOKEN: TOKEN,
    ...env,
  });
  procs.push(p);
  return p;
}

const joined = (host: string): Promise<void> => waitForWorkerNamed(server, host, procs);

const idOf = (host: string): string => server.workers.find((w) => w.info?.host === host)!.id;

beforeAll(async () => {
  dir = await makeSceneDir({ perClass: 12, test: 3 });
  dataset = loadDataset(dir);
  config = tinyClusterConfig(dir, { batchSize: B, microBatch: MICRO, contentHash: 'none' });
  server = new ClusterServer({ token: TOKEN, config });
  server.bus.on((e) => events.push(e));
  await server.listen();
  // 'big' joins first: the one-worker reference runs on it
  worker('big', 64);
  await joined('big');
  worker('small', 4);
  worker('slow', 16, { DPTRAIN_TEST_STEP_MS_PER_SAMPLE: '40' });
  await joined('small');
  await joined('slow');
}, 300_000);

afterAll(async () => {
  await server?.close();
  for (const p of procs) p.child.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  // no process of this test outlives it
  expect(processesMentioning(dir)).toEqual([]);
});

describe('capacity- and throughput-weighted shares (real processes, loopback)', () => {
  it('unequal capacities and speeds: the weights of one worker and of one process, bit for bit; capacities kept; the slow worker gets less', {
    timeout: 400_000,
  }, async () => {
    const one = await trainSteps(new ClusterExecutor({ server, maxWorkers: 1 }), dataset, config, STEPS);
    const reference = await inProcessWeights(dataset, config, STEPS, one.w0);
    expect(Array.from(one.weights)).toEqual(Array.from(reference));

    const ex = new ClusterExecutor({ server });
    const perStep: StepWorkerStat[][] = [];
    const run = await trainSteps(ex, dataset, config, STEPS, one.w0, (_s, res) => perStep.push(res.workers));
    expect(Array.from(run.weights)).toEqual(Array.from(reference));
    for (const e of ex.ledger.summary()) expect(e.duplicates).toBe(0);
    // nobody refused a part (a worker answers one above its capacity with E_BATCH_CAPACITY) and nobody was lost
    expect(Object.fromEntries(server.rejected)).toEqual({});
    expect(events.filter((e) => e.type === 'worker_lost')).toEqual([]);

    const [big, small, slow] = [idOf('big'), idOf('small'), idOf('slow')];
    const samplesOf = (id: string, steps: StepWorkerStat[][]): number => steps.reduce((a, ws) => a + (ws.find((w) => w.id === id)?.samples ?? 0), 0);
    // the capacities together hold a batch: no step gives a worker more than its capacity
    for (const ws of perStep) {
      expect(samplesOf(small, [ws])).toBeLessThanOrEqual(4);
      expect(samplesOf(slow, [ws])).toBeLessThanOrEqual(16);
    }
    // all three took part at the start (equal seeds); by the end the share follows the measured rate
    expect(perStep[0]!.map((w) => w.id).sort()).toEqual([big, small, slow].sort());
    const last = perStep.slice(-6);
    expect(samplesOf(slow, last), JSON.stringify(last)).toBeLessThan(samplesOf(big, last));
    expect(ex.throughput.rate(slow)!).toBeLessThan(ex.throughput.rate(big)!);
  });

  it('a worker whose capacity cannot hold one micro-batch is refused at join with E_BATCH_CAPACITY', { timeout: 200_000 }, async () => {
    const tiny = worker('tiny', 1);
    expect(await tiny.exited).toBe(2);
    expect(tiny.output()).toMatch(/E_BATCH_CAPACITY.*batch capacity 1 is below the micro-batch of 2/);
    expect(server.workers.some((w) => w.info?.host === 'tiny')).toBe(false);
  });
});
