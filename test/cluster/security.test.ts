import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AdamOptimizer,
  EventBus,
  globalBatch,
  isDptrainError,
  joinDatasetIdentity,
  loadDataset,
  stepsPerEpoch,
  type Dataset,
  type RunConfig,
  type RunEvent,
} from '@dptrain/core';
import { connectObserver } from '@dptrain/client';
import { ClusterExecutor, ClusterServer } from '../../packages/coordinator/src/cluster/index.js';
import { dptrain, makeSceneDir, tinyClusterConfig, type Proc, waitForWorkers } from './fixtures.testutil.js';
import { fuzzCoordinator } from './fuzz.testutil.js';
import { selfSignedCert } from '../helpers/tls.testutil.js';

const TOKEN = 'security-token';
const procs: Proc[] = [];
let dir: string;
let dataset: Dataset;
let config: RunConfig;
let server: ClusterServer;
const events: RunEvent[] = [];

beforeAll(async () => {
  dir = await makeSceneDir({ perClass: 8, test: 3 });
  dataset = loadDataset(dir);
  config = tinyClusterConfig(dir, [4, 4, 8, 8, 8], {
    batchSize: 8,
    microBatch: 2, // 4 micro-batches a step: the fake workers get slices too
  });
  const bus = new EventBus();
  bus.on((e) => events.push(e));
  server = new ClusterServer({
    token: TOKEN,
    config,
    bus,
    datasetHash: await joinDatasetIdentity(dataset, config),
    protocol: { lostAfterMs: 3000, heartbeatIntervalMs: 500 },
  });
  const url = await server.listen();
  const real = dptrain(['worker', '--connect', url, '--data', dir, '--backend', 'cpu', '--name', 'real'], { DPTRAIN_TOKEN: TOKEN });
  procs.push(real);
  await waitForWorkers(
    server,
    () => server.workers.length >= 1,
    () => 'worker did not join',
    { output: () => real.output() },
  );
}, 240_000);

afterAll(async () => {
  await server?.close();
  for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
});

describe('authentication and join checks', () => {
  it('refuses a worker with a wrong token, and one whose data differs', async () => {
    const other = await makeSceneDir({ perClass: 9, test: 3 });
    const wrongToken = dptrain(['worker', '--connect', server.url, '--data', dir, '--backend', 'cpu'], { DPTRAIN_TOKEN: 'not-the-token' });
    const wrongData = dptrain(['worker', '--connect', server.url, '--data', other, '--backend', 'cpu'], { DPTRAIN_TOKEN: TOKEN });
    procs.push(wrongToken, wrongData);
    expect(await wrongToken.exited).toBe(2);
    expect(wrongToken.output()).toMatch(/refused: E_AUTH/);
    expect(await wrongData.exited).toBe(2);
    expect(wrongData.output()).toMatch(/refused: E_DATASET_HASH/);
    // the last line is the CLI's coded one
    expect(wrongToken.output().trim().split('\n').at(-1)).toMatch(/^dptrain: \[E_AUTH\] worker refused: /);
    const codes = events.filter((e) => e.type === 'frame_rejected').map((e) => (e as { code: string }).code);
    expect(codes).toContain('E_AUTH');
    expect(codes).toContain('E_DATASET_HASH');
    expect(server.workers.map((w) => w.info?.host)).toEqual(['real']);
  });

  it('refuses a worker whose images were all replaced (same names and labels: the content hash differs)', async () => {
    const copy = mkdtempSync(join(tmpdir(), 'dpt-replaced-'));
    cpSync(dir, copy, { recursive: true });
    const images = readdirSync(join(copy, 'SceneImages')).sort();
    const bytes = images.map((f) => readFileSync(join(copy, 'SceneImages', f)));
    images.forEach((f, i) => writeFileSync(join(copy, 'SceneImages', f), bytes[(i + 1) % bytes.length] as Buffer)); // every file now holds another photo
    expect(loadDataset(copy).hash).toBe(dataset.hash);
    // the token comes from a file (not the command line): it authenticates, and its weakness is pointed out
    const tokenFile = join(copy, 'token');
    writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    const replaced = dptrain(['worker', '--connect', server.url, '--data', copy, '--backend', 'cpu', '--name', 'replaced', '--token-file', tokenFile]);
    procs.push(replaced);
    expect(await replaced.exited).toBe(2);
    expect(replaced.output()).toMatch(/refused: E_DATASET_HASH/);
    expect(replaced.output()).toMatch(/shared secret is weak: 14 characters/);
    expect(server.workers.map((w) => w.info?.host)).toEqual(['real']);
  });

  it('observers authenticate too, and cannot write', async () => {
    await expect(connectObserver({ url: server.url, token: 'nope', onEvent: () => undefined, reconnect: false })).rejects.toSatisfy((e) =>
      isDptrainError(e, 'E_AUTH'),
    );
    const seen: RunEvent[] = [];
    const obs = await connectObserver({ url: server.url, token: TOKEN, onEvent: (e) => seen.push(e), reconnect: false });
    await new Promise((r) => setTimeout(r, 200));
    expect(seen.some((e) => e.type === 'worker_joined')).toBe(true); // the history snapshot
    obs.close();
  });
});

describe('fuzzing a training coordinator', () => {
  it('rejects 10,000 random and mutated frames, keeps training, and the weights only see good gradients', { timeout: 300_000 }, async () => {
    const executor = new ClusterExecutor({ server });
    const { weights: w0 } = await executor.beginPhase('head');
    const samples = dataset.labelled;
    const spe = stepsPerEpoch(samples.length, 8);
    const run = async (stop: () => boolean): Promise<{ weights: Float32Array; steps: number; losses: number[] }> => {
      await executor.beginPhase('head', w0.slice());
      const weights = w0.slice();
      const opt = new AdamOptimizer({ learningRate: 1e-2 });
      const losses: number[] = [];
      let s = 0;
      for (; !stop(); s++) {
        const epoch = Math.floor(s / spe);
        const batch = globalBatch(samples.length, 8, config.seed, epoch, s % spe).map((i) => samples[i]!);
        const res = await executor.computeGradients(batch, { phase: 'head', epoch, step: s });
        expect(res.count).toBe(batch.length);
        expect(Number.isFinite(res.loss)).toBe(true);
        losses.push(res.loss);
        opt.step(weights, res.gradients);
        await executor.setWeights(weights);
      }
      return { weights, steps: s, losses };
    };

    let fuzzDone = false;
    let stepsAfterFuzz = 0;
    const fuzz = fuzzCoordinator({ url: server.url, token: TOKEN, frames: 10_000, hashes: () => server.referenceHashes, seed: 7 }).finally(
      () => (fuzzDone = true),
    );
    let stepsDuringFuzz = 0;
    const fuzzed = await run(() => {
      if (!fuzzDone) stepsDuringFuzz++;
      else stepsAfterFuzz++;
      return fuzzDone && stepsAfterFuzz > 5;
    });
    const stats = await fuzz;
    console.log(`fuzz: ${JSON.stringify(stats)}, steps during fuzz ${stepsDuringFuzz}, rejected ${JSON.stringify(Object.fromEntries(server.rejected))}`);
    expect(stats.sent).toBeGreaterThanOrEqual(10_000);
    expect(stepsDuringFuzz).toBeGreaterThan(1); // it kept training while being fuzzed
    expect(stats.gradientReplies).toBeGreaterThan(0); // fuzz workers did get slices and answered them badly

    // every class of bad frame was seen and rejected with its code
    for (const code of [
      'E_PROTOCOL_DECODE',
      'E_PROTOCOL_SCHEMA',
      'E_PROTOCOL_VERSION',
      'E_PROTOCOL_OVERSIZE',
      'E_AUTH',
      'E_BASE_HASH',
      'E_GRADIENT_SHAPE',
      'E_GRADIENT_NONFINITE',
    ]) {
      expect(server.rejected.get(code) ?? 0, `${code}: ${JSON.stringify(Object.fromEntries(server.rejected))}`).toBeGreaterThan(0);
    }
    // every rejection is counted, but a flood from one address is reported as a few events (RejectionLog), not one each
    const total = [...server.rejected.values()].reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(1000);
    expect(events.filter((e) => e.type === 'frame_rejected').length).toBeLessThan(200);
    // the real worker was never dropped, and only it remains
    expect(server.workers.map((w) => w.info?.host)).toEqual(['real']);

    // the same steps without fuzzing give the same weights: no bad frame touched them
    const clean = await run(
      (
        (n) => () =>
          n-- <= 0
      )(fuzzed.steps),
    );
    expect(clean.steps).toBe(fuzzed.steps);
    let diff = 0;
    let scale = 0;
    for (let i = 0; i < w0.length; i++) {
      diff = Math.max(diff, Math.abs(clean.weights[i]! - fuzzed.weights[i]!));
      scale = Math.max(scale, Math.abs(clean.weights[i]!));
    }
    expect(diff / scale).toBeLessThan(1e-3);
    expect(fuzzed.weights.every(Number.isFinite)).toBe(true);
  });
});

describe('TLS', () => {
  it('serves wss:// with --tls-cert/--tls-key; clients trust it with --ca', async () => {
    const { cert, key } = selfSignedCert();
    const tls = new ClusterServer({ token: TOKEN, config, tls: { cert, key } });
    const url = await tls.listen();
    try {
      expect(url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+$/);
      await expect(connectObserver({ url, token: TOKEN, onEvent: () => undefined, reconnect: false })).rejects.toThrow(/self.signed|certificate/i);
      const obs = await connectObserver({ url, token: TOKEN, ca: cert, onEvent: () => undefined, reconnect: false });
      obs.close();
    } finally {
      await tls.close();
    }
  });
});
