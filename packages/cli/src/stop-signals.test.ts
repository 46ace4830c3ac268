import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { DptrainError } from '@dptrain/core';
import { reportStop, signalExitCode, stopOnSignals } from './stop-signals.js';

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
