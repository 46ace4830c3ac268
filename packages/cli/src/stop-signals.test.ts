import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { DptrainError } from '@dptrain/core';
import { reportStop, runUntilStopped, signalExitCode, stopOnSignals } from './stop-signals.js';

function fakeProcess() {
  const target = new EventEmitter();
  return {
    target: target as unknown as Pick<NodeJS.Process, 'on' | 'off'>,
    send: (sig: NodeJS.Signals) => target.emit(sig, sig),
    listeners: () => target.listenerCount('SIGINT') + target.listenerCount('SIGTERM') + target.listenerCount('SIGHUP'),
  };
}

describe('stopOnSignals', () => {
  it('first signal aborts and says so; a second one exits at once with the first signal status', () => {
    const p = fakeProcess();
    const said: string[] = [];
    const exits: number[] = [];
    const stop = stopOnSignals({ say: (l) => said.push(l), exit: (c) => exits.push(c), target: p.target });
    expect(stop.signal.aborted).toBe(false);
    p.send('SIGTERM');
    expect(stop.signal.aborted).toBe(true);
    expect(stop.received()).toBe('SIGTERM');
    expect(stop.exitCode()).toBe(143);
    expect(said[0]).toMatch(/^SIGTERM: finishing the current step, then writing a checkpoint/);
    expect(exits).toEqual([]);
    p.send('SIGINT');
    expect(exits).toEqual([143]);
    stop.dispose();
    expect(p.listeners()).toBe(0);
  });

  it('exits when the run does not stop within the grace time', async () => {
    const p = fakeProcess();
    const exits: number[] = [];
    const stop = stopOnSignals({ say: () => undefined, exit: (c) => exits.push(c), target: p.target, graceMs: 30 });
    p.send('SIGHUP');
    await new Promise((r) => setTimeout(r, 80));
    expect(exits).toEqual([129]);
    stop.dispose();
  });

  it('reportStop: only for a stop, and only for E_STOPPED errors', () => {
    const p = fakeProcess();
    const stop = stopOnSignals({ say: () => undefined, exit: () => undefined, target: p.target });
    const said: string[] = [];
    const say = (l: string) => said.push(l);
    expect(reportStop(stop, { steps: 3, resumeHint: 'x', say })).toBe(false);
    p.send('SIGINT');
    expect(reportStop(stop, { err: new Error('boom'), resumeHint: 'x', say })).toBe(false);
    const before = process.exitCode;
    expect(reportStop(stop, { err: new DptrainError('E_STOPPED', 'waiting'), resumeHint: 'dptrain single --resume R', say })).toBe(true);
    expect(process.exitCode).toBe(130);
    process.exitCode = before;
    expect(said).toEqual(['stopped by SIGINT while waiting for workers: the last checkpoint stands; continue with dptrain single --resume R']);
    expect(signalExitCode('SIGKILL')).toBe(137);
    stop.dispose();
  });
});

describe('runUntilStopped', () => {
  function views() {
    const log: string[] = [];
    return {
      log,
      say: (l: string) => void log.push(`say ${l}`),
      finish: async () => void log.push('finish'),
      close: async () => void log.push('close'),
    };
  }

  it('a run that ends: its done line, then the views finish; the signal handlers are gone', async () => {
    const p = fakeProcess();
    const v = views();
    await runUntilStopped(
      v,
      'hint',
      async () => ({ stopped: false, steps: 7 }),
      (r) => `done after ${r.steps}`,
      { target: p.target },
    );
    expect(v.log).toEqual(['say done after 7', 'finish']);
    expect(p.listeners()).toBe(0);
  });

  it('a failure closes the views and is rethrown', async () => {
    const p = fakeProcess();
    const v = views();
    await expect(
      runUntilStopped(
        v,
        'hint',
        async () => {
          throw new DptrainError('E_DATA_CSV', 'bad row');
        },
        () => 'never',
        { target: p.target },
      ),
    ).rejects.toThrow('bad row');
    expect(v.log).toEqual(['close']);
    expect(p.listeners()).toBe(0);
  });

  it('a run stopped by a signal closes the views first, then says how to go on, with the signal status', async () => {
    const p = fakeProcess();
    const v = views();
    const before = process.exitCode;
    await runUntilStopped(
      v,
      'dptrain single --resume R',
      async (signal) => {
        p.send('SIGTERM');
        expect(signal.aborted).toBe(true);
        return { stopped: true, steps: 4 };
      },
      () => 'never',
      { target: p.target, exit: () => undefined },
    );
    expect(process.exitCode).toBe(143);
    process.exitCode = before;
    expect(v.log[0]).toMatch(/^say SIGTERM: finishing the current step/);
    expect(v.log.slice(1, 3)).toEqual(['close', 'say stopped by SIGTERM after step 4: checkpoint written; continue with dptrain single --resume R']);
    expect(v.log).not.toContain('finish');
    expect(p.listeners()).toBe(0);
  });
});
