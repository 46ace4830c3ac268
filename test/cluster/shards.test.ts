import { readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasAdamKernel, loadDataset, readCheckpoint, setAdamKernel, useNativeOptimizer, type AdamOptimizer, type Dataset, type RunConfig } from '@dptrain/core';
import {
  ClusterExecutor,
  ClusterServer,
  ShardedClusterExecutor,
  spawnLocalShard,
  spawnLocalWorkers,
  stopLocalWorkers,
} from '../../packages/coordinator/src/cluster/index.js';
import { dptrain, makeSceneDir, tinyFlags, tinyLoopConfig, waitFor } from './fixtures.testutil.js';
import { sha256 as sha, trainSteps } from './step-loop.testutil.js';
import { isChildOf, processesMentioning, processesWith } from '../helpers/processes.testutil.js';

/**
 * The sharded summation service on real processes (loopback): 2 worker processes and 3 shard processes, one of
 * them forced onto the JS Adam loop (DPTRAIN_NATIVE_OPTIMIZER=0) while the coordinator's star reference and the
 * other shards run the native addon's compiled Adam. The same 20 Adam steps in star and with S = 2 and 3 shards,
 * and through an agent (1 x 2 workers, the hierarchical topology, streaming its merged gradient in buckets of 64
 * floats to the coordinator or to the shards) with and without 2 and 3 shards, must give the same
 * weights and optimizer state, bit for bit. Then `dptrain single --shards 2` with a shard
 * killed (-9) mid-run: the run rolls back to its checkpoint, finishes, counts every sample once, and ends with the
 * weights of the same run without the fault.
 */
const STEPS = 20;
const TOKEN = 'shards-equivalence-token';

describe('sharded summation: star, S = 2 and 3 shards, hierarchical (an agent) with and without shards give the same bits', () => {
  let dir: string;
  let dataset: Dataset;
  let config: RunConfig;
  let server: ClusterServer;
  let workers: ChildProcess[] = [];
  const shards: ChildProcess[] = [];
  let jsShardLog = '';

  beforeAll(async () => {
    dir = await makeSceneDir({ perClass: 12, test: 6 });
    dataset = loadDataset(dir);
    config = tinyLoopConfig(dir);
    server = new ClusterServer({ token: TOKEN, config });
    const url = await server.listen();
    workers = spawnLocalWorkers({ url, token: TOKEN, count: 2, dataDir: dir, args: ['--backend', 'cpu'], stdio: 'ignore' });
    // the first shard to join (range 0 in every layout) computes Adam with the JS loop
    const js = spawnLocalShard({ url, token: TOKEN, stdio: 'pipe', env: { DPTRAIN_NATIVE_OPTIMIZER: '0' } });
    js.stderr!.on('data', (d) => (jsShardLog += d));
    js.stdout!.resume();
    shards.push(js);
    const t0 = Date.now();
    while (server.shards.ready.length < 1) {
      if (Date.now() - t0 > 120_000) throw new Error('the first shard did not join');
      await server.shards.waitForReady(1000);
    }
    for (let k = 0; k < 2; k++) shards.push(spawnLocalShard({ url, token: TOKEN, stdio: 'ignore' }));
    while (server.workers.length < 2 || server.shards.ready.length < 3) {
      if (Date.now() - t0 > 240_000) throw new Error(`${server.workers.length} workers and ${server.shards.ready.length} shards joined`);
      await Promise.race([server.waitForJoin(1000), server.shards.waitForReady(1000)]);
    }
  }, 300_000);

  afterAll(async () => {
    await server?.close();
    await stopLocalWorkers([...workers, ...shards]);
    setAdamKernel(undefined);
    expect(processesMentioning(dir)).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  });

  /** 20 Adam steps from `w0`: the star updates here, a sharded executor on its shards (its trainStep). */
  async function train(executor: ClusterExecutor, w0: Float32Array): Promise<{ weights: Float32Array; optimizer: AdamOptimizer }> {
    const run = await trainSteps(executor, dataset, config, STEPS, w0);
    for (const e of executor.ledger.summary()) expect(e.duplicates).toBe(0);
    return run;
  }

  it('the same final weights and Adam state, bit for bit, with one shard on the JS Adam loop', async (ctx) => {
    // the star reference runs the addon's compiled Adam: without the native addon (no oneDNN) there is no such reference
    if (!(await useNativeOptimizer())) ctx.skip();
    expect(hasAdamKernel()).toBe(true);
    // (a phase's first weights come from the leader's replica: take them once, before it trains)
    const w0 = (await new ClusterExecutor({ server }).beginPhase('head')).weights.slice();
    const star = await train(new ClusterExecutor({ server }), w0);
    const starState = star.optimizer.exportState();
    expect(star.optimizer.iterations).toBe(STEPS);
    for (const s of [2, 3]) {
      // buckets of 64 floats: the head's few hundred weights make several buckets, so every shard owns a range
      const executor = new ShardedClusterExecutor({ server, shards: s, bucketFloats: 64 });
      const run = await train(executor, w0);
      expect(executor.shardLayout.length).toBe(s);
      expect(sha(run.weights), `${s} shards`).toBe(sha(star.weights));
      const state = run.optimizer.exportState();
      expect(state.iterations).toBe(STEPS);
      expect(sha(state.slots.m!), `${s} shards: m`).toBe(sha(starState.slots.m!));
      expect(sha(state.slots.v!), `${s} shards: v`).toBe(sha(starState.slots.v!));
    }
    expect(jsShardLog).toContain('optimizer the JS loop');

    // hierarchical: one agent with the 2 workers behind it is the only sender, star and with 2 shards
    const b = new ClusterServer({ token: TOKEN, config });
    const bUrl = await b.listen();
    const agent = dptrain(['worker', '--connect', bUrl, '--data', dir, '--backend', 'cpu', '--nproc-per-node', '2'], { DPTRAIN_TOKEN: TOKEN });
    const bShards = [0, 1, 2].map(() => spawnLocalShard({ url: bUrl, token: TOKEN, stdio: 'ignore' }));
    try {
      const t0 = Date.now();
      while (b.workers.length < 1 || b.shards.ready.length < 3) {
        if (Date.now() - t0 > 300_000) throw new Error(`agent and shards did not join:\n${agent.output()}`);
        await Promise.race([b.waitForJoin(1000), b.shards.waitForReady(1000)]);
      }
      expect(b.workers[0]!.info?.batchCapacity).toBeGreaterThan(0);
      const hierarchical = await train(new ClusterExecutor({ server: b }), w0);
      expect(sha(hierarchical.weights), 'hierarchical').toBe(sha(star.weights));
      // buckets of 64 floats: the agent merges and streams its gradient bucket by bucket, to the coordinator or the shards
      const streamed = await train(new ClusterExecutor({ server: b, bucketFloats: 64 }), w0);
      expect(sha(streamed.weights), 'hierarchical, streamed buckets').toBe(sha(star.weights));
      for (const s of [2, 3]) {
        const hs = await train(new ShardedClusterExecutor({ server: b, shards: s, bucketFloats: 64 }), w0);
        expect(sha(hs.weights), `hierarchical, ${s} shards`).toBe(sha(star.weights));
        expect(sha(hs.optimizer.exportState().slots.m!), `hierarchical, ${s} shards: m`).toBe(sha(starState.slots.m!));
      }
    } finally {
      await b.close();
      agent.child.kill('SIGTERM');
      await agent.exited;
      await stopLocalWorkers(bShards);
    }
  }, 600_000);
});

describe('dptrain single --shards 2: kill -9 of a shard mid-run', () => {
  let dir: string;
  let out: string;

  beforeAll(async () => {
    dir = await makeSceneDir({ perClass: 12, test: 6 });
    out = path.join(dir, 'runs');
  }, 120_000);

  afterAll(() => {
    expect(processesMentioning(dir)).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  });

  // 27 training samples, batches of 8: 4 steps an epoch; 5 epochs = 20 steps, a checkpoint every 4
  const flags = (runDir: string): string[] => [
    'single',
    '--workers',
    '2',
    '--shards',
    '2',
    '--shard-bucket-floats',
    '64',
    '--backend',
    'cpu',
    '--plain',
    '--checkpoint-every',
    '4',
    '--out',
    runDir,
    ...tinyFlags(dir, { epochs: 5 }),
  ];

  it('rolls back to the checkpoint, finishes, counts every sample once, and ends with the fault-free weights', async () => {
    // the reference is the star (no shards): the same weights, evaluation and submission are expected
    const ref = dptrain(
      flags(path.join(out, 'ref')).filter(
        (_, i, all) => !['--shards', '--shard-bucket-floats'].includes(all[i]!) && !['--shards', '--shard-bucket-floats'].includes(all[i - 1]!),
      ),
    );
    expect(await ref.exited, ref.output()).toBe(0);
    const faulty = path.join(out, 'faulty');
    const run = dptrain(flags(faulty));
    // once the checkpoint at step 8 is written, kill one of the run's shards while a step is under way
    await waitFor(run, (o) => /checkpoint at step 8/.test(o), 300_000, 'the checkpoint at step 8');
    const shard = processesWith(' shard --connect ').find((p) => isChildOf(p.pid, run.child.pid!));
    expect(shard, 'a shard process of the run').toBeDefined();
    process.kill(shard!.pid, 'SIGKILL');
    expect(await run.exited, run.output()).toBe(0);
    expect(run.output()).toMatch(/rollback: a shard was lost (at step \d+|between steps)/);
    console.log(
      run
        .output()
        .split('\n')
        .filter((l) => /rollback|lost|resuming/.test(l))
        .join('\n'),
    );
    const [a, b] = [await readCheckpoint(path.join(out, 'ref')), await readCheckpoint(faulty)];
    expect(b!.step).toBe(a!.step);
    expect(b!.step).toBeGreaterThan(8);
    expect(sha(b!.weights)).toBe(sha(a!.weights));
    expect(sha(b!.optimizer.slots.m!)).toBe(sha(a!.optimizer.slots.m!));
    // every epoch's samples counted once, the replayed steps included
    const summary = JSON.parse(readFileSync(path.join(faulty, 'cluster.json'), 'utf8')) as {
      epochs: { counted: number; distinct: number; duplicates: number }[];
    };
    const refSummary = JSON.parse(readFileSync(path.join(out, 'ref', 'cluster.json'), 'utf8')) as typeof summary;
    expect(summary.epochs).toEqual(refSummary.epochs);
    expect(summary.epochs.length).toBeGreaterThan(2);
    for (const e of summary.epochs) expect(e).toEqual({ ...e, counted: 27, distinct: 27, duplicates: 0 });
    expect(readFileSync(path.join(faulty, 'submission.csv'), 'utf8')).toBe(readFileSync(path.join(out, 'ref', 'submission.csv'), 'utf8'));
    // every epoch's figures (validation included) as the star's, timings aside
    const figures = (dir: string): unknown[] =>
      readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => ({ ...(JSON.parse(l) as object), epochMs: 0 }));
    expect(figures(faulty)).toEqual(figures(path.join(out, 'ref')));
  }, 900_000);
});
