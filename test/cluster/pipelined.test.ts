import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { bucketRanges, decodeMessage, loadDataset, type Dataset, type RunConfig } from '@dptrain/core';
import { dptrain, makeSceneDir, tinyLoopConfig, type Proc } from './fixtures.testutil.js';
import { sha256, trainSteps, withoutTrainStep } from './step-loop.testutil.js';
import { processesMentioning } from '../helpers/processes.testutil.js';
import { ClusterExecutor, ClusterServer, Peer, ShardedClusterExecutor } from '../../packages/coordinator/src/cluster/index.js';
import { spawnLocalShard, spawnLocalWorkers, stopLocalWorkers } from '../../packages/coordinator/src/cluster/index.js';

/**
 * The pipelined update (ClusterExecutor.trainStep: each bucket of the flat vector updated and its weights sent at
 * once as a `weights_bucket` frame) on real processes over loopback. The same 20 Adam steps on a tiny VGG must give
 * the same final weights, bit for bit, in every topology: 4 plain workers updated the old way (computeGradients +
 * one `weights` frame), the same 4 pipelined in buckets of 64 floats (with and without acknowledgements), 2 agents
 * x 2 workers pipelined (the agents forward each bucket frame to their local workers as received), and 2 shards
 * behind those agents (the shards send their own ranges). The workers' predictions afterwards show that every
 * replica holds the assembled weights.
 */
const STEPS = 20;
const BUCKET = 64;
const TOKEN = 'pipelined-token';

/** Counts the `weights_bucket` frames this process sends (to workers or agents) while `run` runs. */
async function countingBucketFrames<T>(run: () => Promise<T>): Promise<{ result: T; frames: number }> {
  let frames = 0;
  const send = Peer.prototype.send;
  const spy = vi.spyOn(Peer.prototype, 'send').mockImplementation(function (this: Peer, message) {
    if (Buffer.isBuffer(message) && decodeMessage(message).type === 'weights_bucket') frames++;
    send.call(this, message);
  });
  try {
    return { result: await run(), frames };
  } finally {
    spy.mockRestore();
  }
}

async function joined(server: ClusterServer, workers: number, shards: number, what: () => string): Promise<void> {
  const t0 = Date.now();
  while (server.workers.length < workers || server.shards.ready.length < shards) {
    if (Date.now() - t0 > 300_000)
      throw new Error(`${server.workers.length} of ${workers} workers, ${server.shards.ready.length} of ${shards} shards joined:\n${what()}`);
    await Promise.race([server.waitForJoin(1000), server.shards.waitForReady(1000)]);
  }
}

describe('pipelined weights buckets: plain, pipelined, agents and shards give the same bits (real processes)', () => {
  let dir: string;
  let dataset: Dataset;
  let config: RunConfig;
  let star: ClusterServer;
  let hier: ClusterServer;
  let workers: ChildProcess[] = [];
  let shards: ChildProcess[] = [];
  const agents: Proc[] = [];

  beforeAll(async () => {
    dir = await makeSceneDir({ perClass: 12, test: 6 });
    dataset = loadDataset(dir);
    config = tinyLoopConfig(dir, { precision: 'fp32' });
    star = new ClusterServer({ token: TOKEN, config });
    const starUrl = await star.listen();
    workers = spawnLocalWorkers({ url: starUrl, token: TOKEN, count: 4, dataDir: dir, args: ['--backend', 'cpu'], stdio: 'ignore' });
    hier = new ClusterServer({ token: TOKEN, config });
    const hierUrl = await hier.listen();
    for (let i = 0; i < 2; i++) {
      const args = ['worker', '--connect', hierUrl, '--data', dir, '--backend', 'cpu', '--nproc-per-node', '2', '--name', `agent-${i}`];
      agents.push(dptrain(args, { DPTRAIN_TOKEN: TOKEN }));
    }
    shards = [0, 1].map(() => spawnLocalShard({ url: hierUrl, token: TOKEN, stdio: 'ignore' }));
    await joined(star, 4, 0, () => '');
    await joined(hier, 2, 2, () => agents.map((a) => a.output()).join('\n'));
  }, 600_000);

  afterAll(async () => {
    await star?.close();
    await hier?.close();
    for (const a of agents) if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill('SIGTERM');
    await Promise.all(agents.map((a) => a.exited));
    await stopLocalWorkers([...workers, ...shards]);
    expect(processesMentioning(dir)).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  });

  it(`the same final weights after ${STEPS} steps, bit for bit, and the same predictions`, { timeout: 900_000 }, async () => {
    const w0 = (await new ClusterExecutor({ server: star }).beginPhase('head')).weights.slice();
    expect(bucketRanges(w0.length, BUCKET).length).toBeGreaterThan(3); // the update does travel in several buckets

    const plainExecutor = new ClusterExecutor({ server: star });
    const { result: plain, frames: plainFrames } = await countingBucketFrames(() => trainSteps(withoutTrainStep(plainExecutor), dataset, config, STEPS, w0));
    expect(plainFrames).toBe(0);
    const reference = sha256(plain.weights);
    const probs = Array.from(await plainExecutor.predict(dataset.labelled, 'evaluate'));
    expect(sha256(w0)).not.toBe(reference); // it did train

    const buckets = bucketRanges(w0.length, BUCKET).length;
    const runs: [string, ClusterServer, () => ClusterExecutor][] = [
      ['4 workers, pipelined', star, () => new ClusterExecutor({ server: star, bucketFloats: BUCKET })],
      ['4 workers, pipelined, acknowledged', star, () => new ClusterExecutor({ server: star, bucketFloats: BUCKET, ackWeights: true })],
      ['2 agents x 2 workers, pipelined', hier, () => new ClusterExecutor({ server: hier, bucketFloats: BUCKET })],
      ['2 agents x 2 workers, acknowledged', hier, () => new ClusterExecutor({ server: hier, bucketFloats: BUCKET, ackWeights: true })],
      ['2 agents x 2 workers, 2 shards', hier, () => new ShardedClusterExecutor({ server: hier, shards: 2, bucketFloats: BUCKET })],
    ];
    for (const [what, server, make] of runs) {
      const executor = make();
      const sentBefore = server.workers.reduce((a, p) => a + p.bytesOut, 0);
      const { result: run, frames } = await countingBucketFrames(() => trainSteps(executor, dataset, config, STEPS, w0));
      expect(sha256(run.weights), what).toBe(reference);
      // the star and the agents were sent every bucket of every step (the shards send their own ranges)
      expect(frames, what).toBe(executor instanceof ShardedClusterExecutor ? 0 : STEPS * buckets * server.workers.length);
      for (const e of executor.ledger.summary()) expect(e.duplicates, what).toBe(0);
      // the new weights went out from here (to every peer, each step; the shards send theirs themselves)
      const sent = server.workers.reduce((a, p) => a + p.bytesOut, 0) - sentBefore;
      if (!(executor instanceof ShardedClusterExecutor)) expect(sent, what).toBeGreaterThan(STEPS * server.workers.length * w0.byteLength);
      // every replica holds the assembled weights: the same predictions
      expect(Array.from(await executor.predict(dataset.labelled, 'evaluate')), what).toEqual(probs);
    }
  });
});
