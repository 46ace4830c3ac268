import { PassThrough } from 'node:stream';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EventBus, type Clock } from '@dptrain/core';
import { attachJsonLog, attachPlainLogger, RUN_LOG_FILE, TaskProgressReporter } from '../../packages/dashboard/src/observability/index.js';
import { T0, runEvents } from './fixtures.testutil.js';

function capture(isTTY = false) {
  const stream = new PassThrough() as PassThrough & { isTTY?: boolean };
  stream.isTTY = isTTY;
  let out = '';
  stream.on('data', (d: Buffer) => (out += d.toString()));
  return { stream, out: () => out };
}

const clock: Clock = { now: () => T0 + 100_000 };
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('plain logger', () => {
  it('prints a step line every N steps and one line per event', () => {
    const bus = new EventBus();
    const cap = capture();
    const log = attachPlainLogger(bus, { every: 5, stream: cap.stream, clock, timestamps: false });
    for (const e of runEvents(12)) bus.emit(e);
    bus.emit({ type: 'worker_lost', time: T0 + 20_000, id: 'w2', reason: 'heartbeat timeout' });
    bus.emit({ type: 'checkpoint_written', time: T0 + 20_100, path: '/tmp/r/checkpoint.bin', step: 12 });
    bus.emit({ type: 'early_stopping', time: T0 + 20_200, wait: 2, patience: 3, stopped: false });
    bus.emit({ type: 'early_stopping', time: T0 + 20_250, wait: 3, patience: 3, stopped: true });
    bus.emit({ type: 'waiting_for_workers', time: T0 + 20_300, connected: 1, required: 2 });
    bus.emit({ type: 'waiting_for_workers', time: T0 + 20_400, connected: 1, required: 2 });
    log.close();
    const lines = cap.out().trim().split('\n');
    const steps = lines.filter((l) => l.includes('loss') && l.includes('img/s'));
    // steps 1, 5 and 10, and nothing else up to 12
    expect(steps.map((l) => /step (\d+)/.exec(l)?.[1])).toEqual(['1', '5', '10']);
    expect(steps[2]).toMatch(/head epoch 1\/2 {2}step 10 {2}\(10\/20 50\.0%\) {2}loss 0\.2 {2}lr 1e-3 {2}128\.0 img\/s {2}step p50 250ms p99 250ms {2}ETA /);
    expect(lines).toContain('worker w1 joined from host-w1 (wasm, cpu x1)');
    expect(lines.some((l) => l.startsWith('phase head: 2 epoch(s) x 10 steps'))).toBe(true);
    expect(lines.some((l) => /^head epoch 1\/2 done in 10s: train loss 1 acc 50\.0% {2}val loss 1\.1 acc 60\.0%/.test(l))).toBe(true);
    expect(lines).toContain('worker w2 lost: heartbeat timeout');
    expect(lines).toContain('checkpoint at step 12: /tmp/r/checkpoint.bin');
    // the counter is on the dashboard; the log shows only the stop
    expect(lines.filter((l) => l.startsWith('early stopping'))).toEqual(['early stopping: no improvement for 3 epoch(s), phase stopped']);
    expect(lines.filter((l) => l.startsWith('waiting for workers'))).toHaveLength(1);
    // closed: nothing more
    bus.emit({ type: 'worker_lost', time: T0 + 30_000, id: 'w1', reason: 'x' });
    expect(cap.out()).not.toContain('w1 lost');
  });

  it('shows long-task progress as lines when not interactive', () => {
    const bus = new EventBus();
    const cap = capture(false);
    attachPlainLogger(bus, { stream: cap.stream, clock, timestamps: false, quietMs: 0 });
    for (let d = 0; d <= 100; d += 5) bus.emit({ type: 'progress', time: T0 + d * 10, task: 'extract_features', done: d, total: 100 });
    const lines = cap.out().trim().split('\n');
    expect(lines[0]).toBe('extract features: 0/100 (0%)');
    expect(lines.slice(1, 4).map((l) => /\((\d+)%\)/.exec(l)?.[1])).toEqual(['25', '50', '75']);
    expect(lines[1]).toMatch(/100\.0\/s {2}ETA 750ms/);
    expect(lines[4]).toBe('extract features: 100/100 done in 1s');
    expect(lines).toHaveLength(5);
    expect(cap.out()).not.toContain('\r');
  });

  it('keeps short tasks silent and shows long ones once they have run quietMs', () => {
    const cap = capture(false);
    const rep = new TaskProgressReporter({ stream: cap.stream, timestamps: false, quietMs: 1000 });
    for (let d = 0; d <= 12; d++) rep.update({ type: 'progress', time: T0 + d * 10, task: 'evaluate', done: d, total: 12 });
    expect(cap.out()).toBe('');
    for (let d = 0; d <= 10; d++) rep.update({ type: 'progress', time: T0 + d * 500, task: 'validate', done: d * 10, total: 100 });
    const lines = cap.out().trim().split('\n');
    expect(lines[0]).toMatch(/^validate: 20\/100 \(20%\)/);
    expect(lines.at(-1)).toBe('validate: 100/100 done in 5s');
    expect(lines.map((l) => /\((\d+)%\)/.exec(l)?.[1])).toEqual(['20', '50', '80', undefined]);
  });

  it('redraws a progress bar in place when interactive and keeps it below other lines', () => {
    const cap = capture(true);
    const rep = new TaskProgressReporter({ stream: cap.stream, clock: { now: () => 0 }, redrawMs: 0, timestamps: false, width: 10, quietMs: 0 });
    rep.update({ type: 'progress', time: 1000, task: 'validate', done: 0, total: 4 });
    rep.update({ type: 'progress', time: 2000, task: 'validate', done: 2, total: 4 });
    rep.println('worker w3 joined');
    rep.update({ type: 'progress', time: 3000, task: 'validate', done: 4, total: 4 });
    const out = cap.out();
    expect(out).toContain('\r\u001B[2Kvalidate █████░░░░░ 2/4 50%');
    // the line is printed on a cleared row, then the bar comes back
    expect(out).toMatch(/\r\u001B\[2Kworker w3 joined\n\r\u001B\[2Kvalidate █████░░░░░ 2\/4 50%/);
    expect(out.endsWith('validate: 4/4 done in 2s\n')).toBe(true);
  });
});

describe('JSON log (pino)', () => {
  it('writes one JSON line per event with the event time, type and level', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dptrain-jsonlog-'));
    dirs.push(dir);
    const bus = new EventBus();
    const file = join(dir, 'sub', RUN_LOG_FILE);
    const log = attachJsonLog(bus, file, { base: { runId: 'r-test' } });
    const events = runEvents(3);
    for (const e of events) bus.emit(e);
    bus.emit({ type: 'worker_lost', time: T0 + 9000, id: 'w2', reason: 'gone' });
    bus.emit({ type: 'log', time: T0 + 9100, level: 'error', message: 'boom' });
    log.close();
    const lines = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(events.length + 2);
    expect(lines[0]).toMatchObject({ level: 'info', time: T0, event: 'run_started', runId: 'r-test', trainSamples: 320, msg: 'run r-test started' });
    const step = lines.find((l) => l.event === 'step_completed')!;
    expect(step).toMatchObject({ level: 'debug', step: 1, stepsPerEpoch: 10, straggler: 'w2' });
    expect((step.workers as unknown[]).length).toBe(2);
    expect(lines.at(-2)).toMatchObject({ level: 'warn', event: 'worker_lost', id: 'w2', reason: 'gone' });
    expect(lines.at(-1)).toMatchObject({ level: 'error', event: 'log', msg: 'boom', time: T0 + 9100 });
  });
});
