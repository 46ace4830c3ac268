import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { bucketRanges, loadDataset, type Dataset, type MessageOf, type RunConfig } from '@dptrain/core';
import { ClusterExecutor, ClusterServer, Peer, spawnLocalWorkers, stopLocalWorkers } from '../../packages/coordinator/src/cluster/index.js';
import { dptrain, makeSceneDir, tinyLoopConfig, waitFor, type Proc } from './fixtures.testutil.js';
import { trainSteps } from './step-loop.testutil.js';
import { killProcessesWith } from '../helpers/processes.testutil.js';

/**
 * Agents (`dptrain worker --nproc-per-node N`), real processes on loopback: the same 20 Adam steps through 4 plain
 * workers (star), 2 agents x 2 workers and 1 agent x 4 workers (hierarchical) must give the same weights, bit for
 * bit; so must runs where a local worker, or a whole agent, is killed with `kill -9` mid-step, with every sample
 * of every epoch counted once by the coordinator's ledger and no process left behind. Streamed gradients: an agent
 * asked for buckets sends each merged bucket up as its local workers' buckets come in (not once all are in), and a
 * local worker killed halfway through its buckets changes neither the bits nor what went up (each bucket once).
 */
const STEPS = 20;
const TOKEN = 'agents-token';
let dir: string;
let dataset: Dataset;
let config: RunConfig;
let reference: { weights: Float32Array; w0: Float32Array; probs: Float32Array };
const procs: Proc[] = [];

/** Live pids whose parent is `pid` (/proc). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** A coordinator side in this process: a server and an executor over whatever joins it. */
async function coordinator(): Promise<{ server: ClusterServer; url: string }> {
  const server = new ClusterServer({ token: TOKEN, config });
  return { server, url: await server.listen() };
}

async function waitForPeers(server: ClusterServer, n: number, what: () => string): Promise<void> {
  const t0 = Date.now();
  while (server.workers.length < n) {
    if (Date.now() - t0 > 300_000) throw new Error(`only ${server.workers.length} of ${n} peers joined:\n${what()}`);
    await server.waitForJoin(1000);
  }
}

/** `count` agents of `perAgent` cpu workers each, joined to `url`. */
function startAgents(url: string, count: number, perAgent: number, extra: string[] = [], env: Record<string, string>[] = []): Proc[] {
  const agents = Array.from({ length: count }, (_, i) =>
    dptrain(['worker', '--connect', url, '--data', dir, '--backend', 'cpu', '--nproc-per-node', String(perAgent), '--name', `agent-${i}`, ...extra], {
      DPTRAIN_TOKEN: TOKEN,
      ...env[i],
    }),
  );
  procs.push(...agents);
  return agents;
}

async function stopAgents(agents: Proc[]): Promise<void> {
  for (const a of agents) if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill('SIGTERM');
  await Promise.all(agents.map((a) => a.exited));
}

/** Gradient buckets of 16 floats (the tiny VGG head's 291 trainable values: 19 a step). */
const BUCKET = 16;

interface SeenBucket {
  msg: MessageOf<'grad_bucket'>;
  at: number;
  /** The training step in flight when it came (`step()`). */
  step: number;
}

/** Records every `grad_bucket` frame this process's peers receive: the frame, when, in which step. */
function recordBuckets(step: () => number): { got: SeenBucket[]; of: (request: number) => SeenBucket[]; stop: () => void } {
  const got: SeenBucket[] = [];
  const bucket = Peer.prototype.bucket;
  const spy = vi.spyOn(Peer.prototype, 'bucket').mockImplementation(function (this: Peer, msg) {
    got.push({ msg, at: performance.now(), step: step() });
    return bucket.call(this, msg);
  });
  return { got, of: (request) => got.filter((b) => b.msg.id === request), stop: () => spy.mockRestore() };
}

/** Every epoch's samples counted once by the coordinator. */
function expectEachSampleOnce(executor: ClusterExecutor): void {
  const epochs = executor.ledger.summary();
  expect(epochs.length).toBeGreaterThan(0);
  for (const e of epochs) {
    expect(e.duplicates).toBe(0);
    expect(e.counted).toBe(e.distinct);
  }
  const total = epochs.reduce((a, e) => a + e.counted, 0);
  // 20 steps of 8 over 36 samples: 4 full epochs (5 steps each, the last of 4 samples)
  expect(total).toBe(4 * dataset.labelled.length);
}

beforeAll(async () => {
  dir = await makeSceneDir({ perClass: 12, test: 6 });
  dataset = loadDataset(dir);
  config = tinyLoopConfig(dir, { precision: 'fp32' }); // every worker of every topology takes part in a step
  // the reference: 4 plain workers, one connection each (star)
  const { server, url } = await coordinator();
  const children = spawnLocalWorkers({ url, token: TOKEN, count: 4, dataDir: dir, args: ['--backend', 'cpu'], stdio: 'ignore' });
  try {
    await waitForPeers(server, 4, () => '');
    const executor = new ClusterExecutor({ server });
    const run = await trainSteps(executor, dataset, config, STEPS);
    expectEachSampleOnce(executor);
    reference = { ...run, probs: await executor.predict(dataset.labelled, 'evaluate') };
  } finally {
    await server.close();
    await stopLocalWorkers(children);
  }
}, 600_000);

afterAll(() => {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  if (dir) killProcessesWith(dir);
});

describe('agents: one connection per machine, the same bits (real processes)', () => {
  for (const [count, perAgent] of [
    [2, 2],
    [1, 4],
  ] as const) {
    it(`${count} agent(s) x ${perAgent} workers: the same weights after ${STEPS} steps as 4 plain workers, bit for bit; predictions too`, {
      timeout: 600_000,
    }, async () => {
      const { server, url } = await coordinator();
      const agents = startAgents(url, count, perAgent);
      try {
        await waitForPeers(server, count, () => agents.map((a) => a.output()).join('\n'));
        // one peer per agent, saying what stands behind it
        for (const p of server.workers) {
          expect(p.info?.localWorkers).toBe(perAgent);
          expect(p.info?.batchCapacity).toBe(perAgent * 64);
        }
        const executor = new ClusterExecutor({ server });
        // each agent says how its local workers shared its part (the dashboard's rows under the agent)
        const localShares: { samples: number; local: number[] }[] = [];
        const run = await trainSteps(executor, dataset, config, STEPS, reference.w0, (_s, res) => {
          for (const w of res.workers) localShares.push({ samples: w.samples, local: (w.local ?? []).map((l) => l.samples) });
        });
        expect(Array.from(run.weights)).toEqual(Array.from(reference.weights));
        expectEachSampleOnce(executor);
        expect(localShares.length).toBeGreaterThanOrEqual(STEPS);
        for (const { samples, local } of localShares) {
          expect(local.length).toBeGreaterThanOrEqual(1);
          expect(local.length).toBeLessThanOrEqual(perAgent);
          expect(local.reduce((a, b) => a + b, 0)).toBe(samples);
        }
        // a full step of 8 reaches every local worker of an agent at least once over the run
        expect(Math.max(...localShares.map((x) => x.local.length))).toBe(perAgent);
        // prediction chunks are split among each agent's workers; each image's probabilities are the same
        expect(Array.from(await executor.predict(dataset.labelled, 'evaluate'))).toEqual(Array.from(reference.probs));
      } finally {
        await server.close();
        await stopAgents(agents);
      }
      // bye from the coordinator: every agent and every one of its workers is gone
      for (const a of agents) expect(childrenOf(a.child.pid!)).toEqual([]);
    });
  }

  it('kill -9 of a local worker mid-step: its agent restarts it (logged) and the run has the same bits; every sample once', { timeout: 600_000 }, async () => {
    const { server, url } = await coordinator();
    // the agent's workers block 4 s in step 5 (test hook): the kill lands while the step is in flight
    const [agent] = startAgents(
      url,
      1,
      2,
      ['--max-restarts', '1', '--restart-delay-ms', '200'],
      [{ DPTRAIN_TEST_BLOCK_STEP: '5', DPTRAIN_TEST_BLOCK_STEP_MS: '4000' }],
    );
    try {
      await waitForPeers(server, 1, () => agent!.output());
      const executor = new ClusterExecutor({ server });
      let victim = 0;
      const training = trainSteps(executor, dataset, config, STEPS, reference.w0);
      await waitFor(agent!, (o) => /blocking the main thread for 4000 ms in step 5/.test(o), 300_000, 'step 5 in flight');
      const workers = childrenOf(agent!.child.pid!);
      expect(workers).toHaveLength(2);
      victim = workers[0]!;
      process.kill(victim, 'SIGKILL');
      const run = await training;
      expect(Array.from(run.weights)).toEqual(Array.from(reference.weights));
      expectEachSampleOnce(executor);
      // the agent said what happened, restarted the worker, and kept one connection to the coordinator
      expect(agent!.output()).toMatch(new RegExp(`local worker \\d \\(pid ${victim}\\) killed by SIGKILL; restarting it \\(restart 1 of 1, --max-restarts\\)`));
      await waitFor(agent!, (o) => /local worker \d restarted as pid \d+/.test(o), 60_000, 'restart');
      expect(server.workers).toHaveLength(1);
      expect(alive(victim)).toBe(false);
    } finally {
      await server.close();
      await stopAgents([agent!]);
    }
  });

  it('kill -9 of one of 2 agents mid-step: its share goes to the other, the same bits, every sample once, its workers exit', {
    timeout: 600_000,
  }, async () => {
    const { server, url } = await coordinator();
    const lost: string[] = [];
    server.onWorkerLost((p, reason) => lost.push(`${p.id}: ${reason}`));
    const agents = startAgents(url, 2, 2, [], [{}, { DPTRAIN_TEST_BLOCK_STEP: '5', DPTRAIN_TEST_BLOCK_STEP_MS: '4000' }]);
    try {
      await waitForPeers(server, 2, () => agents.map((a) => a.output()).join('\n'));
      const executor = new ClusterExecutor({ server });
      const training = trainSteps(executor, dataset, config, STEPS, reference.w0);
      const victim = agents[1]!;
      await waitFor(victim, (o) => /blocking the main thread for 4000 ms in step 5/.test(o), 300_000, 'step 5 in flight');
      const orphans = childrenOf(victim.child.pid!);
      expect(orphans).toHaveLength(2);
      const killedAt = Date.now();
      victim.child.kill('SIGKILL');
      const run = await training;
      expect(lost).toHaveLength(1);
      expect(lost[0]).toMatch(/connection closed/);
      expect(Array.from(run.weights)).toEqual(Array.from(reference.weights));
      expectEachSampleOnce(executor);
      // the survivor did the rest alone; the dead agent's workers saw their parent go and exited
      expect(server.workers).toHaveLength(1);
      const t0 = Date.now();
      while (orphans.some(alive) && Date.now() - t0 < 15_000) await new Promise((r) => setTimeout(r, 100));
      expect(orphans.filter(alive)).toEqual([]);
      console.log(`agents: the killed agent's workers were gone ${Date.now() - killedAt} ms after its kill -9`);
    } finally {
      await server.close();
      await stopAgents(agents);
    }
  });

  it('an agent streams its merged gradient: each bucket goes up as its local workers send theirs, in order, once', { timeout: 600_000 }, async () => {
    const { server, url } = await coordinator();
    // each local worker waits 25 ms before each of its buckets after the first (test hook): an agent that waited for
    // whole gradients would send its ~20 buckets in one burst after ~0.5 s, a streaming one about 25 ms apart
    const GAP = 25;
    const [agent] = startAgents(url, 1, 2, [], [{ DPTRAIN_TEST_BUCKET_GAP_MS: String(GAP) }]);
    const seen = recordBuckets(() => 0);
    try {
      await waitForPeers(server, 1, () => agent!.output());
      const executor = new ClusterExecutor({ server, bucketFloats: BUCKET });
      const run = await trainSteps(executor, dataset, config, STEPS, reference.w0);
      expect(Array.from(run.weights)).toEqual(Array.from(reference.weights));
      expectEachSampleOnce(executor);
      const buckets = bucketRanges(reference.w0.length, BUCKET);
      expect(buckets.length).toBeGreaterThan(10);
      const requests = [...new Set(seen.got.map((b) => b.msg.id))];
      expect(requests).toHaveLength(STEPS); // one request a step (one peer), every bucket of it once, in order
      for (const frames of requests.map(seen.of)) {
        expect(frames.map((b) => b.msg.offset)).toEqual(buckets.map((r) => r.start));
        // spread over the local workers' own sending: no burst at the end
        expect(frames.at(-1)!.at - frames[0]!.at).toBeGreaterThan(0.5 * (buckets.length - 1) * GAP);
      }
    } finally {
      seen.stop();
      await server.close();
      await stopAgents([agent!]);
    }
  });

  it('kill -9 of a local worker halfway through its buckets: the same bits, no bucket sent twice, every sample once', { timeout: 600_000 }, async () => {
    const { server, url } = await coordinator();
    const lost: string[] = [];
    server.onWorkerLost((p, reason) => lost.push(`${p.id}: ${reason}`));
    // in step 5 each local worker takes 150 ms between its buckets: the kill lands after the agent sent some up
    const env = { DPTRAIN_TEST_BUCKET_GAP_MS: '150', DPTRAIN_TEST_BUCKET_GAP_STEP: '5' };
    const [agent] = startAgents(url, 1, 2, ['--max-restarts', '1', '--restart-delay-ms', '200'], [env]);
    let done = 0;
    const seen = recordBuckets(() => done);
    try {
      await waitForPeers(server, 1, () => agent!.output());
      const executor = new ClusterExecutor({ server, bucketFloats: BUCKET });
      const training = trainSteps(executor, dataset, config, STEPS, reference.w0, () => done++);
      const t0 = Date.now();
      let step5: number | undefined;
      while (step5 === undefined || seen.of(step5).length < 3) {
        step5 = seen.got.find((b) => b.step === 5)?.msg.id;
        if (Date.now() - t0 > 300_000) throw new Error(`step 5's buckets never came:\n${agent!.output()}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      const workers = childrenOf(agent!.child.pid!);
      expect(workers).toHaveLength(2);
      process.kill(workers[0]!, 'SIGKILL');
      const run = await training;
      expect(Array.from(run.weights)).toEqual(Array.from(reference.weights));
      expectEachSampleOnce(executor);
      // what went up for step 5: every bucket once, in order (a repeat would have been refused), none lost upstream
      const buckets = bucketRanges(reference.w0.length, BUCKET);
      expect(seen.of(step5).map((b) => b.msg.offset)).toEqual(buckets.map((r) => r.start));
      expect(lost).toEqual([]);
      expect(agent!.output()).toMatch(/killed by SIGKILL; restarting it/);
    } finally {
      seen.stop();
      await server.close();
      await stopAgents([agent!]);
    }
  });
});
