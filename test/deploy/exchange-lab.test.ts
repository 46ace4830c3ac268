/**
 * The exchange lab's fault case: hosts in network namespaces with tc-limited links, the lab coordinator in a
 * namespace of its own, one synthetic worker (the real worker code over a model-free replica) per host. Mid-run
 * one host's link to the coordinator is cut (its switch port goes down: packets vanish, no RST): the coordinator
 * declares that worker lost within 5 s, re-cuts its share among the other two, and the run completes with every
 * sample counted once per epoch and the full batch in every step.
 *
 * Needs root, iproute2's ip and tc, and the kernel's token-bucket qdisc; skipped otherwise, saying why.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetnsLab } from './netns-lab.testutil.js';
import { processesMentioning } from '../helpers/processes.testutil.js';
import { createLabData, LabRun, type LabEvent } from '../../bench/exchange-lab/lab-run.js';

const probe = NetnsLab.probeShaping();
if (!probe.ok) console.warn(`[exchange-lab] skipped: ${probe.reason}`);

/** A silent peer is lost after this long (heartbeats every second): detection fits in 5 s with a second to spare. */
const LOST_AFTER_MS = 4000;
const DETECT_LIMIT_MS = 5000;
const STEPS = 20;
const STEPS_PER_EPOCH = 10;
const BATCH = 6;

const until = async (what: string, test: () => boolean, timeoutMs: number, run: LabRun): Promise<void> => {
  const t0 = Date.now();
  while (!test()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}\n${run.output.slice(-20).join('\n')}`);
    if (run.coordinator.exitCode !== null) throw new Error(`the lab coordinator exited while waiting for ${what}\n${run.output.slice(-20).join('\n')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe.skipIf(!probe.ok)('exchange lab: a cut link (root + ip/tc)', () => {
  const lab = new NetnsLab({ hosts: ['c', 'h1', 'h2', 'h3'] });
  const marker = `dptrain-exchange-lab-test-${randomBytes(4).toString('hex')}`;
  let run: LabRun | undefined;
  let dataDir = '';

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), `${marker}-`));
    await createLabData(dataDir);
    NetnsLab.sweepStale();
    lab.up();
    for (const host of lab.hosts) lab.shape(host, { rateMbit: 1000 });
  });

  afterAll(async () => {
    run?.stop();
    await lab.down();
    expect(lab.existing(), 'namespaces left behind').toEqual([]);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('detects the cut within 5 s, re-cuts the lost share, and completes with every sample once', async () => {
    // 0.5 M floats (2 MB) per gradient: a step takes a while on a 1 Gbit/s link, so the cut lands mid-run.
    run = LabRun.start({
      lab,
      dataDir,
      coordinatorHost: 'c',
      hosts: ['h1', 'h2', 'h3'],
      workersPerHost: 1,
      topology: 'star',
      floats: 500_000,
      steps: STEPS,
      stepsPerEpoch: STEPS_PER_EPOCH,
      batch: BATCH,
      lostAfterMs: LOST_AFTER_MS,
      env: { DPTRAIN_LAB_MARKER: marker },
    });
    const joined = await run.next('joined', 120_000);
    const victim = (joined.peers as { id: string; host: string }[]).find((p) => p.host === 'h3-w1')!.id;
    const steps = (): LabEvent[] => run!.events.filter((e) => e.event === 'step' && (e.step as number) > 0);
    await until('a timed step with all three workers', () => steps().some((s) => (s.workers as unknown[]).length === 3), 120_000, run);

    const cutAt = Date.now();
    lab.cut('h3');
    const lostEvent = (): LabEvent | undefined => run!.events.find((e) => e.event === 'lost' && e.id === victim);
    await until('the cut worker to be declared lost', () => lostEvent() !== undefined, 30_000, run);
    const lost = lostEvent()!;
    const detectMs = (lost.time as number) - cutAt;
    console.log(`[exchange-lab] ${victim} (host h3) declared lost ${detectMs} ms after its link was cut: ${String(lost.reason)}`);
    expect(detectMs).toBeGreaterThan(0);
    expect(detectMs).toBeLessThanOrEqual(DETECT_LIMIT_MS);
    expect(String(lost.reason)).toMatch(/silent/);

    const done = await run.next('done', 180_000);
    // Every step ran with its whole batch, including the one in flight at the cut; later ones without h3.
    expect(steps().map((s) => s.step)).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
    for (const s of steps()) expect(s.count).toBe(BATCH);
    const last = steps().at(-1)!;
    expect((last.workers as { id: string }[]).map((w) => w.id)).not.toContain(victim);
    expect((last.workers as { samples: number }[]).reduce((n, w) => n + w.samples, 0)).toBe(BATCH);
    // No sample lost or counted twice in any epoch.
    const ledger = done.ledger as { epoch: number; counted: number; distinct: number; duplicates: number }[];
    expect(ledger).toHaveLength(STEPS / STEPS_PER_EPOCH);
    for (const e of ledger) expect(e).toMatchObject({ counted: BATCH * STEPS_PER_EPOCH, distinct: BATCH * STEPS_PER_EPOCH, duplicates: 0 });

    // The survivors leave on the coordinator's bye; the cut-off worker is still retrying until it is killed.
    await run.finish(20_000);
    lab.restore('h3');
    await new Promise((r) => setTimeout(r, 300));
    expect(processesMentioning(marker), 'processes left behind').toEqual([]);
  }, 300_000);
});
