/**
 * The exchange lab's coordinator process (runs inside the coordinator's network namespace): the real
 * ClusterServer + ClusterExecutor (the base hash computed from the config, the data set's taken from the first join), waiting for `peers` joins (plain or synthetic workers, or agents), then
 * timing steps with `runTrainingStep`, as a real run does (the executor's pipelined trainStep: gradients from every
 * peer merged along the tree, then Adam bucket by bucket, each bucket's new weights sent at once, acknowledged after
 * the last; sharded: the shards merge, update and send their ranges). It talks to the bench over stdio, one JSON object a line:
 *
 *   stdout  {"event":"listening","url":...}   {"event":"joined","peers":[{id,host}]}   {"event":"ready"}
 *           {"event":"step","step":k,"ms":..,"gatherMs":..,"count":..,"workers":[{id,samples,computeMs}]}   {"event":"lost","id":..,"time":..,"reason":..}
 *           {"event":"done","ledger":[..]}     {"event":"error","message":..}
 *   stdin   "go" after "ready" (when started with waitForGo), so the bench reads the links' counters first.
 *
 * argv[2]: the JSON of {@link LabCoordinatorOptions}.
 */
import { createInterface } from 'node:readline';
import { AdamOptimizer, parseRunConfig, runTrainingStep, useNativeOptimizer, type Sample } from '@dptrain/core';
import { ClusterExecutor, ClusterServer, ShardedClusterExecutor } from '../../packages/coordinator/src/cluster/index.js';

/** What the bench asks of one lab coordinator. */
export interface LabCoordinatorOptions {
  /** The run's data directory (a tiny synthetic scene set: the workers check its identity at join). */
  dataDir: string;
  /** Address to listen on (the coordinator's lab address). */
  host: string;
  port: number;
  token: string;
  /** Peers (workers or agents) to wait for before the first step. */
  peers: number;
  /** Shards of the sharded summation service (`--shards S`); 0: none (the coordinator merges and updates). */
  shards: number;
  /** Samples per step (the global batch). */
  batch: number;
  /** Micro-batch of the averaging tree. */
  microBatch: number;
  /** Timed steps after the warm-up one. */
  steps: number;
  /** Steps per epoch (sample indices run on across steps within an epoch; the ledger counts per epoch). */
  stepsPerEpoch: number;
  /** Wait for "go" on stdin after the warm-up step. */
  waitForGo: boolean;
  /** A silent peer is lost after this long, in ms. */
  lostAfterMs: number;
  /** Heartbeat interval, in ms. */
  heartbeatMs: number;
}

const opts = JSON.parse(process.argv[2] ?? '{}') as LabCoordinatorOptions;
const say = (o: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`);
};
const lines = createInterface({ input: process.stdin });
const nextLine = (): Promise<string> => new Promise((resolve) => lines.once('line', resolve));

await useNativeOptimizer(); // as the real coordinator: compiled Adam when the addon is present
// tiny-vgg: the frozen base every process hashes at join costs next to nothing to build
const config = parseRunConfig({
  dataDir: opts.dataDir,
  backbone: { kind: 'tiny-vgg', inputSize: [32, 32] },
  microBatch: opts.microBatch,
  batchSize: opts.batch,
  contentHash: 'none',
});
const server = new ClusterServer({
  host: opts.host,
  port: opts.port,
  token: opts.token,
  config,
  protocol: { lostAfterMs: opts.lostAfterMs, heartbeatIntervalMs: opts.heartbeatMs },
});
server.bus.on((e) => {
  if (e.type === 'worker_lost') say({ event: 'lost', id: e.id, time: e.time, reason: e.reason });
  if (process.env.DPTRAIN_LAB_DEBUG) process.stderr.write(`${JSON.stringify(e).slice(0, 400)}\n`);
});
// the micro-batch is the config's; the weights broadcast is acknowledged (a sharded step ends when every shard has
// sent its range, and the next step waits for the ranges to arrive)
const executor =
  opts.shards > 0 ? new ShardedClusterExecutor({ server, ackWeights: true, shards: opts.shards }) : new ClusterExecutor({ server, ackWeights: true });
try {
  say({ event: 'listening', url: await server.listen() });
  while (server.workers.length < opts.peers) await server.waitForJoin(1000);
  say({ event: 'joined', peers: server.workers.map((p) => ({ id: p.id, host: p.info?.host ?? '' })) });
  const { weights } = await executor.beginPhase('head');
  await executor.setWeights(weights);
  const optimizer = new AdamOptimizer({ learningRate: 1e-4 });
  // the gather ends where the pipelined update begins (its one beginStep call; the shards' update has none here)
  let updateAt: number | undefined;
  const beginStep = optimizer.beginStep.bind(optimizer);
  optimizer.beginStep = () => {
    updateAt = performance.now();
    beginStep();
  };
  const epochSize = opts.batch * opts.stepsPerEpoch;
  for (let step = 0; step <= opts.steps; step++) {
    if (step === 1) {
      say({ event: 'ready' });
      if (opts.waitForGo) await nextLine();
    }
    // step 0 warms up (epoch 0 in the ledger); then the epochs (from 1) cover their samples once each
    const epoch = step === 0 ? 0 : 1 + Math.floor((step - 1) / opts.stepsPerEpoch);
    const first = step === 0 ? 0 : ((step - 1) % opts.stepsPerEpoch) * opts.batch;
    const samples: Sample[] = Array.from({ length: opts.batch }, (_, i) => {
      const index = (first + i) % epochSize;
      return { split: 'labelled', index, name: `${index}`, path: `/${index}`, label: index % 2 };
    });
    const t0 = performance.now();
    const ctx = { phase: 'head' as const, epoch, step };
    const update = { weights, optimizer, clipNorm: 0 };
    updateAt = undefined;
    const res = await runTrainingStep(executor, samples, ctx, update);
    const gatherMs = updateAt !== undefined ? updateAt - t0 : undefined;
    const ms = performance.now() - t0;
    // computeMs: from a peer's receipt of the step to its reply (an agent: its local workers' gradients gathered over loopback and merged)
    const workers = res.workers.map((w) => ({ id: w.id, samples: w.samples, computeMs: w.computeMs }));
    say({ event: 'step', step, ms, ...(gatherMs !== undefined ? { gatherMs } : {}), count: res.count, workers });
  }
  say({ event: 'done', ledger: executor.ledger.summary().filter((e) => e.epoch >= 1) });
  await executor.close({ bye: true });
  await server.close();
  process.exit(0);
} catch (err) {
  say({ event: 'error', message: err instanceof Error ? err.message : String(err) });
  await server.close().catch(() => undefined);
  process.exit(1);
}
