import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDataset, type Dataset, type RunConfig, type RunEvent, type StepWorkerStat } from '@dptrain/core';
import { ClusterExecutor, ClusterServer } from '../../packages/coordinator/src/cluster/index.js';
import { dptrain, makeSceneDir, tinyClusterConfig, waitForWorkers, type Proc } from './fixtures.testutil.js';
import { inProcessWeights, trainSteps } from './step-loop.testutil.js';
import { killProcessesWith, processesMentioning } from '../helpers/processes.testutil.js';

/**
 * Capacity- and throughput-weighted shares, on real worker processes over loopback (cpu backend, tiny VGG):
 * three workers with unequal `--batch-capacity` (4, 16, 64) and unequal speed (the one of capacity 16 waits
 * 40 ms per sample: test hook DPTRAIN_TEST_STEP_MS_PER_SAMPLE) train 20 Adam steps to the weights of one worker,
 * and of one process, bit for bit; no part exceeds a capacity (a worker refuses one that does, with
 * E_BATCH_CAPACITY); the slow worker ends with a smaller share than the fast one of the same or larger capacity;
 * two agents with 1 and 3 local workers (each local worker of capacity 2, one micro-batch) give the same bits
 * again, the agent of 3 starts with the larger share (its join's `localWorkers` seeds its weight), and no local
 * worker is ever handed more than its capacity; a worker whose capacity cannot hold one micro-batch is refused at
 * join.
 */
const TOKEN = 'capacity-token';
/** 20 steps of 16 samples in micro-batches of 2: 8 tree leaves a step. */
const [STEPS, B, MICRO] = [20, 16, 2];
let server: ClusterServer;
const procs: Proc[] = [];
let dir: string;
const events: RunEvent[] = [];
let dataset: Dataset;
let config: RunConfig;
/** The one-worker run: its initial and final weights. */
let reference: { weights: Float32Array; w0: Float32Array };

function worker(name: string, capacity: number, extra: string[] = [], env: Record<string, string> = {}): Proc {
  const p = dptrain(['worker', '--connect', server.url, '--data', dir, '--backend', 'cpu', '--name', name, '--batch-capacity', String(capacity), ...extra], {
    DPTRAIN_TOKEN: TOKEN,
    ...env,
  });
  procs.push(p);
  return p;
}

const joined = (host: string): Promise<void> =>
  waitForWorkers(
    server,
    () => server.workers.some((w) => w.info?.host === host),
    () => `${host} never joined`,
    { pollMs: 500, output: () => procs.map((p) => p.output().slice(-2000)).join('\n') },
  );

const idOf = (host: string): string => server.workers.find((w) => w.info?.host === host)!.id;

const samplesOf = (id: string, steps: StepWorkerStat[][]): number => steps.reduce((a, ws) => a + (ws.find((w) => w.id === id)?.samples ?? 0), 0);

/**
 * The 20 steps on whoever is joined now: the weights of the one-worker reference, bit for bit, every sample once,
 * no part refused (a worker answers one above its capacity with E_BATCH_CAPACITY) and none of `ids` lost.
 */
async function weightedRun(ids: string[]): Promise<{ ex: ClusterExecutor; perStep: StepWorkerStat[][] }> {
  const ex = new ClusterExecutor({ server });
  const perStep: StepWorkerStat[][] = [];
  const run = await trainSteps(ex, dataset, config, STEPS, reference.w0, (_s, res) => perStep.push(res.workers));
  expect(Array.from(run.weights)).toEqual(Array.from(reference.weights));
  for (const e of ex.ledger.summary()) expect(e.duplicates).toBe(0);
  expect(Object.fromEntries(server.rejected)).toEqual({});
  expect(events.filter((e) => e.type === 'worker_lost' && ids.includes(e.id))).toEqual([]);
  return { ex, perStep };
}

async function stop(...ps: Proc[]): Promise<void> {
  for (const p of ps) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
  await Promise.all(ps.map((p) => p.exited));
}

beforeAll(async () => {
  dir = await makeSceneDir({ perClass: 12, test: 3 });
  dataset = loadDataset(dir);
  config = tinyClusterConfig(dir, [4, 4, 8, 8, 8], { batchSize: B, microBatch: MICRO, contentHash: 'none' });
  server = new ClusterServer({ token: TOKEN, config });
  server.bus.on((e) => events.push(e));
  await server.listen();
  // 'big' joins first: the one-worker reference runs on it
  worker('big', 64);
  await joined('big');
  const one = await trainSteps(new ClusterExecutor({ server, maxWorkers: 1 }), dataset, config, STEPS);
  reference = { weights: one.weights, w0: one.w0 };
}, 400_000);

afterAll(async () => {
  await server?.close();
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  // no process of this test outlives it
  if (dir) {
    const left = processesMentioning(dir);
    killProcessesWith(dir);
    expect(left).toEqual([]);
  }
});

describe('capacity- and throughput-weighted shares (real processes, loopback)', () => {
  it('one worker gives the weights of one process, bit for bit', { timeout: 200_000 }, async () => {
    expect(Array.from(reference.weights)).toEqual(Array.from(await inProcessWeights(dataset, config, STEPS, reference.w0)));
  });

  it('unequal capacities and speeds: the weights of one worker, bit for bit; capacities kept; the slow worker gets less', {
    timeout: 400_000,
  }, async () => {
    const small = worker('small', 4);
    const slow = worker('slow', 16, [], { DPTRAIN_TEST_STEP_MS_PER_SAMPLE: '40' });
    await joined('small');
    await joined('slow');
    const ids = { big: idOf('big'), small: idOf('small'), slow: idOf('slow') };
    const { ex, perStep } = await weightedRun(Object.values(ids));
    // the capacities together hold a batch: no step gives a worker more than its capacity
    for (const ws of perStep) {
      expect(samplesOf(ids.small, [ws])).toBeLessThanOrEqual(4);
      expect(samplesOf(ids.slow, [ws])).toBeLessThanOrEqual(16);
    }
    // all three took part at the start (equal seeds); by the end the share follows the measured rate
    expect(perStep[0]!.map((w) => w.id).sort()).toEqual(Object.values(ids).sort());
    const last = perStep.slice(-6);
    expect(samplesOf(ids.slow, last), JSON.stringify(last)).toBeLessThan(samplesOf(ids.big, last));
    expect(ex.throughput.rate(ids.slow)!).toBeLessThan(ex.throughput.rate(ids.big)!);
    await stop(small, slow);
  });

  it('two agents with 1 and 3 local workers of capacity 2: the weights of one worker, bit for bit; shares seeded by local workers', {
    timeout: 500_000,
  }, async () => {
    const bigWorker = procs[0]!;
    await stop(bigWorker);
    const agents = [worker('agent-1', 2, ['--nproc-per-node', '1']), worker('agent-3', 2, ['--nproc-per-node', '3'])];
    await joined('agent-1');
    await joined('agent-3');
    const ids = { one: idOf('agent-1'), three: idOf('agent-3') };
    // an agent's capacity is the sum of its local workers'
    expect(server.workers.map((w) => [w.info?.host, w.info?.batchCapacity, w.info?.localWorkers]).sort()).toEqual([
      ['agent-1', 2, 1],
      ['agent-3', 6, 3],
    ]);
    const { perStep } = await weightedRun(Object.values(ids));
    // the first step's shares follow the seeds (1 and 3 local workers) within the capacities: 2 and 6 samples a round
    expect(samplesOf(ids.three, perStep.slice(0, 1))).toBeGreaterThan(samplesOf(ids.one, perStep.slice(0, 1)));
    // inside each agent, no local worker refused a part above its capacity and none was lost (the agent logs both)
    for (const a of agents) expect(a.output()).not.toMatch(/E_BATCH_CAPACITY|local worker \S+ lost|restarting/);
    await stop(...agents);
  });

  it('a worker whose capacity cannot hold one micro-batch is refused at join with E_BATCH_CAPACITY', { timeout: 200_000 }, async () => {
    const tiny = worker('tiny', 1);
    expect(await tiny.exited).toBe(2);
    expect(tiny.output()).toMatch(/E_BATCH_CAPACITY.*batch capacity 1 is below the micro-batch of 2/);
    expect(server.workers.some((w) => w.info?.host === 'tiny')).toBe(false);
  });
});
