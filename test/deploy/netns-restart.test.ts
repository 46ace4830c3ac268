/**
 * The Kubernetes coordinator restart, across real network hops: a coordinator in a namespace of its own, started
 * with the launchers' command line (`--resume RUN_DIR`: a fresh start when there is no checkpoint), two workers on
 * other "hosts" with the launchers' `--give-up-after`. Mid-run the coordinator process is killed (`kill -9`, as a
 * pod lost with its node) and started again with the same command line: it continues from the checkpoint, the
 * workers reconnect by themselves, and the run completes with all its steps.
 *
 * Needs root and iproute2 (as CI has); skipped otherwise, saying why.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { parseAllDocuments } from 'yaml';
import { NetnsLab } from './netns-lab.testutil.js';
import { JsonlTail } from './jsonl-tail.testutil.js';

const probe = NetnsLab.probe();
if (!probe.ok) console.warn(`[netns-restart] skipped: ${probe.reason}`);

const ROOT = join(import.meta.dirname, '..', '..');
const DPTRAIN = join(ROOT, 'packages', 'cli', 'bin', 'dptrain.js');
const TOKEN = 'netns-restart-token-0123456789abcdef';
const WAIT_MS = 150_000;

/** The `args` of the first container in a deploy/k8s manifest, with `$(VAR)`s expanded and paths mapped. */
function k8sArgs(file: string, paths: Record<string, string>, vars: Record<string, string>): string[] {
  const docs = parseAllDocuments(readFileSync(join(ROOT, 'deploy', 'k8s', file), 'utf8')).map(
    (d) => d.toJS() as { kind: string; spec: { template: { spec: { containers: { args: string[] }[] } } } },
  );
  const owner = docs.find((d) => d.kind === 'Deployment' || d.kind === 'Job')!;
  return owner.spec.template.spec.containers[0]!.args.map((a) => paths[a] ?? a.replace(/\$\((\w+)\)/g, (_, v: string) => vars[v] ?? ''));
}
type Ev = { event: string; time: number; msg?: string; step?: number; worker?: { host: string; id: string }; [k: string]: unknown };

describe.skipIf(!probe.ok)('coordinator restart with --resume over network namespaces (root + iproute2)', () => {
  const lab = new NetnsLab({ hosts: ['c', 'w1', 'w2'] });
  let work: string;
  const children: ChildProcess[] = [];
  const output: string[] = [];

  const start = (host: string, args: string[]): ChildProcess => {
    const child = lab.spawn(host, process.execPath, [DPTRAIN, ...args], { cwd: ROOT, env: { ...process.env, DPTRAIN_TOKEN: TOKEN, FORCE_COLOR: '0' } });
    for (const s of [child.stdout, child.stderr]) if (s) createInterface({ input: s }).on('line', (l) => output.push(`[${host}] ${l}`));
    children.push(child);
    return child;
  };
  const exitOf = (child: ChildProcess, ms: number): Promise<number | null | 'timeout'> =>
    child.exitCode !== null
      ? Promise.resolve(child.exitCode)
      : Promise.race([new Promise<number | null>((r) => child.once('exit', (c) => r(c))), new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms))]);

  beforeAll(async () => {
    NetnsLab.sweepStale();
    lab.up();
    work = mkdtempSync(join(tmpdir(), 'dptrain-netns-restart-'));
    const { generateSyntheticScenes } = await import('@dptrain/core');
    await generateSyntheticScenes(join(work, 'data'), { perClass: 6, testPerClass: 1, size: 32, seed: 7 });
  });

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await lab.down();
    expect(lab.existing(), 'namespaces left behind').toEqual([]);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('kill -9 of the coordinator, then the same command line: it resumes from the checkpoint and its agents reconnect', async () => {
    const data = join(work, 'data');
    const runDir = join(work, 'run');
    // the command lines of deploy/k8s (its paths mapped into the lab), plus a tiny model
    const k8s = (file: string) =>
      k8sArgs(
        file,
        { '/data': data, '/runs/scenes': runDir, 'ws://dptrain-coordinator:7420': `ws://${lab.address('c')}:7420` },
        { DPTRAIN_MIN_WORKERS: '2', DPTRAIN_BATCH_SIZE: '6', WORKER_INDEX: '0' },
      );
    const coordinatorArgs = [
      ...k8s('coordinator.yaml'),
      '--backbone',
      'tiny-vgg',
      '--input-size',
      '32x32',
      '--fine-tune-epochs',
      '0',
      '--micro-batch',
      '2',
      '--head-units',
      '16',
      '--no-charts',
      '--epochs',
      '12',
      '--patience',
      '100',
      '--checkpoint-every',
      '5',
      '--no-cache',
    ];
    expect(coordinatorArgs).toContain('--resume');
    const log = new JsonlTail<Ev>(join(runDir, 'run.log.jsonl'));
    let coordinator = start('c', coordinatorArgs);
    const abort = () => (coordinator.exitCode !== null ? `coordinator exited (${coordinator.exitCode})\n${output.slice(-30).join('\n')}` : undefined);
    // the Job's agent line, on the lab's CPU backend (one worker per lab host: it has no GPU), named after its host
    const workerArgs = k8s('workers.yaml')
      .filter((a, i, all) => a !== '--backend' && all[i - 1] !== '--backend' && a !== '--name' && all[i - 1] !== '--name')
      .map((a, i, all) => (all[i - 1] === '--nproc-per-node' ? '1' : a));
    expect(workerArgs).toContain('--give-up-after');
    expect(workerArgs).toContain('--nproc-per-node');
    const workers = ['w1', 'w2'].map((h) => start(h, [...workerArgs, '--backend', 'cpu', '--name', h]));

    // a checkpoint, and a step or two past it
    const ckpt = await log.waitFor((e) => e.event === 'checkpoint_written' && (e.step ?? 0) >= 10, { timeoutMs: WAIT_MS, abort });
    await log.waitFor((e) => e.event === 'step_completed' && (e.step ?? 0) > ckpt.step!, { timeoutMs: WAIT_MS, abort });
    coordinator.kill('SIGKILL');
    await exitOf(coordinator, 10_000);
    log.poll();
    const before = log.records.length;
    const lastCheckpoint = Math.max(...log.records.filter((e) => e.event === 'checkpoint_written').map((e) => e.step!));
    const restartedAt = Date.now();

    // the workers are still there, retrying
    await new Promise((r) => setTimeout(r, 2000));
    for (const w of workers) expect(w.exitCode, output.slice(-20).join('\n')).toBeNull();

    coordinator = start('c', coordinatorArgs);
    const resumed = await log.waitFor((e) => e.event === 'log' && /^resuming from step/.test(e.msg ?? ''), { timeoutMs: WAIT_MS, abort });
    expect(resumed.msg).toContain(`resuming from step ${lastCheckpoint} `);
    for (const h of ['w1', 'w2']) {
      const j = await log.waitFor((e) => e.event === 'worker_joined' && e.worker?.host === h && e.time >= restartedAt, { timeoutMs: WAIT_MS, abort });
      console.log(`[netns-restart] ${h} rejoined the restarted coordinator ${j.time - restartedAt} ms after its restart`);
    }
    expect(await exitOf(coordinator, WAIT_MS), output.slice(-30).join('\n')).toBe(0);
    log.poll();
    const after = log.records
      .slice(before)
      .filter((e) => e.event === 'step_completed')
      .map((e) => e.step!);
    expect(after[0]).toBe(lastCheckpoint + 1); // continued, not started over
    expect(after.at(-1)).toBe(12 * 5);
    const report = JSON.parse(readFileSync(join(runDir, 'report.json'), 'utf8')) as { steps: number };
    expect(report.steps).toBe(60);
    for (const w of workers) expect(await exitOf(w, 20_000), output.slice(-20).join('\n')).toBe(0);
  }, 400_000);
});
