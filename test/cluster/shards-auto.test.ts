import { readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDataset, readCheckpoint, type Dataset, type RunConfig } from '@dptrain/core';
import { ClusterExecutor, ClusterServer, ShardedClusterExecutor, spawnLocalWorkers, stopLocalWorkers } from '../../packages/coordinator/src/cluster/index.js';
import { dptrain, makeSceneDir, tinyFlags, tinyLoopConfig, waitFor, type Proc } from './fixtures.testutil.js';
import { sha256 as sha, trainSteps } from './step-loop.testutil.js';
import { isChildOf, processesMentioning, processesWith } from '../helpers/processes.testutil.js';
import { selfSignedCert } from '../helpers/tls.testutil.js';

/**
 * `--shards auto` on real processes (loopback): 2 agents (`dptrain worker --nproc-per-node 1`), each asked by the
 * coordinator to start its shard beside it. The same 20 Adam steps as the star of 2 plain workers give the same
 * weights and Adam state, bit for bit, with one shard per agent, each a child of its agent. Then a coordinator
 * run with `--shards auto` whose one shard is killed (-9) mid-run: it rolls back to its checkpoint, finishes,
 * counts every sample once, and ends with the weights of the star run.
 */
const STEPS = 20;
const TOKEN = 'shards-auto-token-0123456789abcdef';

const agentArgs = (url: string, dir: string): string[] => ['worker', '--connect', url, '--data', dir, '--backend', 'cpu', '--nproc-per-node', '1'];
/** The shard processes started by `agent` (its children running `dptrain shard`). */
const shardsOf = (agent: Proc): number[] => processesWith(' shard --connect ').flatMap((p) => (isChildOf(p.pid, agent.child.pid!) ? [p.pid] : []));

async function stopAgents(agents: Proc[]): Promise<void> {
  for (const a of agents) if (a.child.exitCode === null) a.child.kill('SIGTERM');
  await Promise.all(agents.map((a) => a.exited));
}

describe('--shards auto: one shard beside each agent', () => {
  let dir: string;
  let dataset: Dataset;
  let config: RunConfig;
  /** The star run of the first test: the bits every layout must give. */
  let star: Awaited<ReturnType<typeof trainSteps>> | undefined;

  beforeAll(async () => {
    dir = await makeSceneDir({ perClass: 12, test: 6 });
    dataset = loadDataset(dir);
    config = tinyLoopConfig(dir);
  }, 120_000);

  afterAll(() => {
    expect(processesMentioning(dir)).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('2 agents start one shard each, and 20 steps give the star bits (weights and Adam state)', async () => {
    // the star: 2 plain worker processes, the coordinator merging and updating
    const a = new ClusterServer({ token: TOKEN, config });
    const workers: ChildProcess[] = spawnLocalWorkers({
      url: await a.listen(),
      token: TOKEN,
      count: 2,
      dataDir: dir,
      args: ['--backend', 'cpu'],
      stdio: 'ignore',
    });
    try {
      const t0 = Date.now();
      while (a.workers.length < 2) {
        if (Date.now() - t0 > 300_000) throw new Error('the workers did not join');
        await a.waitForJoin(1000);
      }
      star = await trainSteps(new ClusterExecutor({ server: a }), dataset, config, STEPS);
    } finally {
      await a.close();
      await stopLocalWorkers(workers);
    }

    const b = new ClusterServer({ token: TOKEN, config });
    const url = await b.listen();
    const agents = [0, 1].map(() => dptrain(agentArgs(url, dir), { DPTRAIN_TOKEN: TOKEN }));
    try {
      const t0 = Date.now();
      while (b.workers.length < 2) {
        if (Date.now() - t0 > 300_000) throw new Error(`the agents did not join:\n${agents.map((x) => x.output()).join('\n')}`);
        await b.waitForJoin(1000);
      }
      // no shard runs before the coordinator asks for them
      expect(b.shards.ready).toHaveLength(0);
      // buckets of 64 floats: the head's few hundred weights make several buckets, so both shards own a range
      const executor = new ShardedClusterExecutor({ server: b, shards: 'auto', bucketFloats: 64 });
      const run = await trainSteps(executor, dataset, config, STEPS, star!.w0);
      expect(executor.shardLayout).toHaveLength(2);
      expect(sha(run.weights)).toBe(sha(star!.weights));
      const [got, want] = [run.optimizer.exportState(), star!.optimizer.exportState()];
      expect(got.iterations).toBe(STEPS);
      expect(sha(got.slots.m!)).toBe(sha(want.slots.m!));
      expect(sha(got.slots.v!)).toBe(sha(want.slots.v!));
      for (const e of executor.ledger.summary()) expect(e.duplicates).toBe(0);
      // each agent started exactly one shard, its own child, and said where it serves
      for (const agent of agents) {
        expect(shardsOf(agent)).toHaveLength(1);
        expect(agent.output()).toMatch(/started a shard beside this agent \(--shards auto\): pid \d+, serving the other agents on ws:\/\/127\.0\.0\.1/);
      }
    } finally {
      await b.close();
      await stopAgents(agents);
    }
  }, 600_000);

  it('over TLS: a wss:// coordinator, each agent serves its shard on wss:// with --shard-tls-cert, the star bits', async () => {
    expect(star, 'the star run of the first test').toBeDefined();
    const { cert, key, dir: certDir } = selfSignedCert();
    const server = new ClusterServer({ token: TOKEN, config, tls: { cert, key } });
    const url = await server.listen();
    expect(url).toMatch(/^wss:/);
    const tlsArgs = ['--ca', cert, '--shard-tls-cert', cert, '--shard-tls-key', key];
    const agents = [0, 1].map(() => dptrain([...agentArgs(url, dir), ...tlsArgs], { DPTRAIN_TOKEN: TOKEN }));
    try {
      const t0 = Date.now();
      while (server.workers.length < 2) {
        if (Date.now() - t0 > 300_000) throw new Error(`the agents did not join:\n${agents.map((x) => x.output()).join('\n')}`);
        await server.waitForJoin(1000);
      }
      const executor = new ShardedClusterExecutor({ server, shards: 'auto', bucketFloats: 64 });
      const run = await trainSteps(executor, dataset, config, STEPS, star!.w0);
      // the shard map names wss:// shards only, and the agents reached them (trusting --ca) to give the star bits
      expect(executor.shardLayout.map((x) => x.url)).toEqual([expect.stringMatching(/^wss:\/\/127\.0\.0\.1:\d+$/), expect.stringMatching(/^wss:/)]);
      expect(sha(run.weights)).toBe(sha(star!.weights));
      for (const agent of agents) {
        expect(agent.output()).toMatch(/serving the other agents on wss:\/\/127\.0\.0\.1/);
        expect(agent.output()).not.toMatch(/unencrypted/);
      }
    } finally {
      await server.close();
      await stopAgents(agents);
      rmSync(certDir, { recursive: true, force: true });
    }
  }, 600_000);

  it('dptrain coordinator --shards auto: kill -9 of one shard rolls back and ends with the star weights, every sample once', async () => {
    const out = path.join(dir, 'runs');
    // 27 training samples, batches of 8: 4 steps an epoch; 5 epochs = 20 steps, a checkpoint every 4
    const run = async (name: string, extra: string[], fault?: (agents: Proc[], coordinator: Proc) => Promise<void>): Promise<string> => {
      const runDir = path.join(out, name);
      const flags = ['--listen', '127.0.0.1:0', '--min-workers', '2', '--checkpoint-every', '4', '--out', runDir, '--no-charts', ...extra];
      const coordinator = dptrain(['coordinator', ...flags, ...tinyFlags(dir, { epochs: 5 })], { DPTRAIN_TOKEN: TOKEN });
      let agents: Proc[] = [];
      try {
        await waitFor(coordinator, (o) => /coordinator listening on ws:\/\/127\.0\.0\.1:\d+/.test(o), 120_000, 'the coordinator to listen');
        const url = /coordinator listening on (ws:\/\/127\.0\.0\.1:\d+)/.exec(coordinator.output())![1]!;
        agents = [0, 1].map(() => dptrain(agentArgs(url, dir), { DPTRAIN_TOKEN: TOKEN }));
        await fault?.(agents, coordinator);
        expect(await coordinator.exited, coordinator.output()).toBe(0);
        return runDir;
      } finally {
        if (coordinator.child.exitCode === null) coordinator.child.kill('SIGKILL');
        await stopAgents(agents);
      }
    };
    const ref = await run('star', []);
    let log = '';
    const faulty = await run('auto', ['--shards', 'auto', '--shard-bucket-floats', '64'], async (agents, coordinator) => {
      // once the checkpoint at step 8 is written, kill the first agent's shard while a step is under way
      await waitFor(coordinator, (o) => /checkpoint at step 8/.test(o), 300_000, 'the checkpoint at step 8');
      expect(agents.map((a) => shardsOf(a).length)).toEqual([1, 1]);
      process.kill(shardsOf(agents[0]!)[0]!, 'SIGKILL');
      await coordinator.exited;
      log = coordinator.output();
    });
    expect(log).toMatch(/sharded summation: 2 shard\(s\)/);
    // the kill lands in a step or between two (the message says which)
    expect(log).toMatch(/rollback: a shard was lost (at step \d+|between steps)/);
    const [a, b] = [await readCheckpoint(ref), await readCheckpoint(faulty)];
    expect(b!.step).toBe(a!.step);
    expect(b!.step).toBeGreaterThan(8);
    expect(sha(b!.weights)).toBe(sha(a!.weights));
    expect(sha(b!.optimizer.slots.m!)).toBe(sha(a!.optimizer.slots.m!));
    // every epoch's samples counted once, the replayed steps included
    type Summary = { epochs: { counted: number; distinct: number; duplicates: number }[] };
    const summary = (d: string): Summary => JSON.parse(readFileSync(path.join(d, 'cluster.json'), 'utf8')) as Summary;
    expect(summary(faulty).epochs).toEqual(summary(ref).epochs);
    expect(summary(faulty).epochs.length).toBeGreaterThan(2);
    for (const e of summary(faulty).epochs) expect(e).toEqual({ ...e, counted: 27, distinct: 27, duplicates: 0 });
    expect(readFileSync(path.join(faulty, 'submission.csv'), 'utf8')).toBe(readFileSync(path.join(ref, 'submission.csv'), 'utf8'));
  }, 900_000);
});
