import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { globalBatch, loadDataset, type Dataset, type RunConfig, type RunEvent } from '@dptrain/core';
import { ClusterExecutor, ClusterServer, type ClusterExecutorOptions } from '../../packages/coordinator/src/cluster/index.js';
import { dptrain, killAll, makeSceneDir, tinyClusterConfig, type Proc, waitForWorkers } from './fixtures.testutil.js';
import { startFakeWorker, type FakeWorker } from './fake-worker.testutil.js';
import { inProcessWeights, trainSteps } from './step-loop.testutil.js';

/**
 * What a worker's answer may be, on real processes and loopback: one real worker (cpu backend) and, per test, a
 * misbehaving peer — a client that joins, heartbeats and answers nothing; one that answers after its deadline;
 * a real worker whose data copy has a FIFO in place of an image (reading it blocks forever); one whose first
 * gradient is finite but 1e25 everywhere. Each run must finish with the weights of the same steps in one
 * process, bit for bit, every sample counted once; a lone worker whose gradient stays out of bounds stops the
 * run with E_GRADIENT_NORM.
 */
const TOKEN = 'guards-token';
const STEPS = 6;
const DEADLINES = { firstStepTimeoutMs: 3000, floorMs: 1500, factor: 5 };
const procs: Proc[] = [];
const fakes: FakeWorker[] = [];
let dir: string;
let dataset: Dataset;
let config: RunConfig;
let server: ClusterServer;
let w0: Float32Array;
let reference: Float32Array;
const events: (RunEvent & { at: number })[] = [];

function worker(name: string, data = dir): Proc {
  const p = dptrain(
    ['worker', '--connect', server.url, '--data', data, '--backend', 'cpu', '--name', name, '--heartbeat-ms', '300', '--lost-after-ms', '10000'],
    { DPTRAIN_TOKEN: TOKEN },
  );
  procs.push(p);
  return p;
}

async function joined(host: string, timeoutMs = 200_000): Promise<void> {
  await waitForWorkers(
    server,
    () => server.workers.some((w) => w.info?.host === host),
    () => `${host} never joined`,
    {
      timeoutMs,
      pollMs: 500,
      output: () => procs.map((p) => p.output().slice(-2000)).join('\n'),
    },
  );
}

function executor(extra: Partial<ClusterExecutorOptions> = {}): ClusterExecutor {
  return new ClusterExecutor({ server, deadlines: DEADLINES, ...extra });
}

/** Per epoch of the STEPS steps: every sample of the steps counted once. */
function expectedLedger(): { phase: string; epoch: number; counted: number; distinct: number; duplicates: number }[] {
  const n = dataset.labelled.length;
  const spe = Math.ceil(n / config.batchSize);
  const out = new Map<number, number>();
  for (let s = 0; s < STEPS; s++)
    out.set(Math.floor(s / spe), (out.get(Math.floor(s / spe)) ?? 0) + globalBatch(n, config.batchSize, config.seed, Math.floor(s / spe), s % spe).length);
  return [...out].map(([epoch, c]) => ({ phase: 'head', epoch, counted: c, distinct: c, duplicates: 0 }));
}

function lostEvents(host: string): string[] {
  return events
    .filter((e): e is Extract<RunEvent, { type: 'worker_lost' }> & { at: number } => e.type === 'worker_lost' && e.id.length > 0 && hostOf.get(e.id) === host)
    .map((e) => e.reason);
}
const hostOf = new Map<string, string>();

beforeAll(async () => {
  dir = await makeSceneDir({ perClass: 12, test: 3 });
  dataset = loadDataset(dir);
  config = tinyClusterConfig(dir, [4, 4, 8, 8, 8], {
    batchSize: 8,
    microBatch: 2,
    cacheFeatures: false,
    contentHash: 'none', // the FIFO copy must get as far as a step (a content hash at join would read the FIFO)
  });
  server = new ClusterServer({ token: TOKEN, config, protocol: { heartbeatIntervalMs: 300, lostAfterMs: 4000 } });
  server.bus.on((e) => {
    events.push({ ...e, at: Date.now() });
    if (e.type === 'worker_joined') hostOf.set(e.worker.id, e.worker.host);
  });
  await server.listen();
  worker('good');
  await joined('good');
  // the fault-free reference: the same steps with the good worker alone, and in this process
  const ex = executor();
  const run = await trainSteps(ex, dataset, config, STEPS);
  w0 = run.w0;
  reference = await inProcessWeights(dataset, config, STEPS, w0);
  expect(Array.from(run.weights)).toEqual(Array.from(reference));
}, 300_000);

afterAll(async () => {
  for (const f of fakes) f.close();
  await server?.close();
  await killAll(procs);
  // no process outlives the tests
  for (const p of procs) expect(p.child.exitCode !== null || p.child.signalCode !== null).toBe(true);
});

describe('request deadlines and the gradient bound (real processes, loopback)', () => {
  it('a client that joins, heartbeats and answers nothing is dropped at its deadline; its share is redone', { timeout: 120_000 }, async () => {
    const fake = await startFakeWorker({ url: server.url, token: TOKEN, hashes: server.referenceHashes, behaviour: 'silent' });
    fakes.push(fake);
    await joined('fake-silent');
    const ex = executor();
    const t0 = Date.now();
    const run = await trainSteps(ex, dataset, config, STEPS, w0);
    expect(Array.from(run.weights)).toEqual(Array.from(reference));
    for (const e of ex.ledger.summary()) expect(e.duplicates).toBe(0);
    expect(ex.ledger.summary()).toEqual(expectedLedger());
    const reasons = lostEvents('fake-silent');
    expect(reasons, JSON.stringify(reasons)).toEqual([
      expect.stringMatching(/^deadline: worker w\d+: no answer to (phase_ready|step) request \d+ within its deadline of 3000 ms/),
    ]);
    expect(Date.now() - t0).toBeLessThan(60_000);
    await fake.closed;
  });

  it('an answer after the deadline never counts: the late worker is dropped, its share redone once', { timeout: 120_000 }, async () => {
    const fake = await startFakeWorker({ url: server.url, token: TOKEN, hashes: server.referenceHashes, behaviour: 'late', lateMs: 3500 });
    fakes.push(fake);
    await joined('fake-late');
    const ex = executor();
    const run = await trainSteps(ex, dataset, config, STEPS, w0);
    await new Promise((r) => setTimeout(r, 1000)); // the late answer has been sent by now
    expect(fake.steps).toBeGreaterThanOrEqual(1);
    expect(Array.from(run.weights)).toEqual(Array.from(reference));
    for (const e of ex.ledger.summary()) expect(e).toMatchObject({ duplicates: 0 });
    expect(ex.ledger.summary()).toEqual(expectedLedger());
    expect(lostEvents('fake-late')).toEqual([expect.stringMatching(/^deadline: worker w\d+: no answer to step request \d+ within its deadline of 3000 ms/)]);
  });

  it('a worker whose data copy has a FIFO in place of an image is bounded by the deadline', { timeout: 180_000 }, async () => {
    // its own copy of the data: the same names and labels (so it hashes the same), links to the images, and a
    // FIFO in place of the first image of each half of the first batch (whichever slice it gets, it blocks)
    const copy = mkdtempSync(join(tmpdir(), 'dp-fifo-'));
    mkdirSync(join(copy, 'SceneImages'));
    copyFileSync(join(dir, 'train.csv'), join(copy, 'train.csv'));
    copyFileSync(join(dir, 'test.csv'), join(copy, 'test.csv'));
    const batch0 = globalBatch(dataset.labelled.length, config.batchSize, config.seed, 0, 0);
    const fifos = new Set([batch0[0]!, batch0[4]!].map((i) => dataset.labelled[i]!.name));
    for (const s of [...dataset.labelled, ...dataset.test]) {
      if (fifos.has(s.name)) execFileSync('mkfifo', [join(copy, 'SceneImages', s.name)]);
      else symlinkSync(s.path, join(copy, 'SceneImages', s.name));
    }
    writeFileSync(join(copy, 'README'), 'fifo test copy\n');
    const stuck = worker('fifo', copy);
    await joined('fifo');
    const ex = executor();
    const run = await trainSteps(ex, dataset, config, STEPS, w0);
    expect(Array.from(run.weights)).toEqual(Array.from(reference));
    expect(ex.ledger.summary()).toEqual(expectedLedger());
    const reasons = lostEvents('fifo');
    expect(reasons.length, JSON.stringify(reasons)).toBeGreaterThanOrEqual(1);
    // bounded: by its deadline, or refused at once where image reading refuses non-regular files
    expect(reasons[0]).toMatch(/^deadline: worker w\d+: no answer to step request \d+ within its deadline of 3000 ms|^worker error E_DATA/);
    stuck.child.kill('SIGKILL');
    await stuck.exited;
  });

  it('a finite but huge first gradient (1e25) is refused with a logged reason; the others redo its share', { timeout: 120_000 }, async () => {
    const fake = await startFakeWorker({ url: server.url, token: TOKEN, hashes: server.referenceHashes, behaviour: 'poison', scale: 1e25 });
    fakes.push(fake);
    await joined('fake-poison');
    const ex = executor();
    const run = await trainSteps(ex, dataset, config, STEPS, w0);
    expect(Array.from(run.weights)).toEqual(Array.from(reference)); // Adam's state never saw it
    expect(run.weights.every((x) => Number.isFinite(x))).toBe(true);
    expect(ex.ledger.summary()).toEqual(expectedLedger());
    const rejected = events.filter(
      (e): e is Extract<RunEvent, { type: 'frame_rejected' }> & { at: number } => e.type === 'frame_rejected' && e.code === 'E_GRADIENT_NORM',
    );
    expect(rejected).toHaveLength(1);
    expect(rejected[0]!.reason).toMatch(
      /step 0, samples \d+\.\.\d+: gradient norm .* times the median .* step's other gradients \(limit 100x, --max-grad-norm-ratio\); its share is redone by the others/,
    );
    expect(lostEvents('fake-poison')).toEqual([expect.stringMatching(/^E_GRADIENT_NORM: /)]);
    expect(server.rejected.get('E_GRADIENT_NORM')).toBe(1);
  });

  it('a lone worker whose gradient leaves the bound recomputes the step once, then the run stops with E_GRADIENT_NORM', { timeout: 120_000 }, async () => {
    // the good worker leaves: the fake is alone; two plausible steps, then gradients 1e6 times larger
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    const t0 = Date.now();
    while (server.workers.some((w) => w.info?.host === 'good' || w.info?.host === 'fifo')) {
      if (Date.now() - t0 > 20_000) throw new Error('the real workers were not lost');
      await new Promise((r) => setTimeout(r, 50));
    }
    const fake = await startFakeWorker({
      url: server.url,
      token: TOKEN,
      hashes: server.referenceHashes,
      behaviour: 'poison',
      scale: 1e3,
      honestSteps: 2,
      host: 'fake-lone',
    });
    fakes.push(fake);
    await joined('fake-lone');
    const warnings: string[] = [];
    server.bus.on((e) => {
      if (e.type === 'log' && e.level === 'warn') warnings.push(e.message);
    });
    const ex = executor();
    const err = await trainSteps(ex, dataset, config, STEPS, w0).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({
      code: 'E_GRADIENT_NORM',
      message: expect.stringMatching(/step 2, samples 0\.\.7: gradient norm .* refused again after recomputing it, and no other worker can redo it: stopping/),
    });
    expect(warnings.filter((m) => m.startsWith('gradient refused, recomputing once'))).toHaveLength(1);
    expect(fake.steps).toBe(4); // 2 accepted, the refused one, its recomputation
    // the worker was not dropped: it is the only one
    expect(server.workers.some((w) => w.info?.host === 'fake-lone')).toBe(true);
  });
});
