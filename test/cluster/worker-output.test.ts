import { spawn } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { RunEvent } from '@dptrain/core';
import { routeWorkerOutput, workerLineLevel } from '../../packages/coordinator/src/cluster/index.js';

/** A child that writes what local workers write: chatter, a warning, an error with its stack. */
const SCRIPT = `
console.error('dptrain worker: backend cpu (cpu)');
console.log('Hi there. Looks like you are running TensorFlow.js in Node.js.');
console.error('dptrain worker: coordinator silent for 6000 ms; reconnecting');
console.error('dptrain worker: E_DATA_INVALID: no labelled sample with index 7');
console.error('    at samplesOf (worker.ts:1:1)');
`;

function run(mode: 'inherit' | 'events' | 'ignore'): Promise<{ events: Extract<RunEvent, { type: 'log' }>[]; raw: string }> {
  const child = spawn(process.execPath, ['-e', SCRIPT], { stdio: ['ignore', 'pipe', 'pipe'] });
  const events: Extract<RunEvent, { type: 'log' }>[] = [];
  const stderr = new PassThrough();
  let raw = '';
  stderr.on('data', (d) => (raw += d));
  routeWorkerOutput(child, { mode, name: 'local worker 2', emit: (e) => e.type === 'log' && events.push(e), stderr, now: () => 42 });
  return new Promise((resolve) => child.once('close', () => setImmediate(() => resolve({ events, raw }))));
}

describe('local workers output (a real child process)', () => {
  it("'events' (dashboard): every line to the run log, warnings and errors at their level, nothing raw", async () => {
    const { events, raw } = await run('events');
    expect(raw).toBe('');
    const byText = Object.fromEntries(events.map((e) => [e.message, e.level]));
    expect(byText).toEqual({
      'local worker 2: backend cpu (cpu)': 'debug',
      'local worker 2: Hi there. Looks like you are running TensorFlow.js in Node.js.': 'debug',
      'local worker 2: coordinator silent for 6000 ms; reconnecting': 'warn',
      'local worker 2: E_DATA_INVALID: no labelled sample with index 7': 'error',
      'local worker 2:     at samplesOf (worker.ts:1:1)': 'debug',
    });
    expect(events.every((e) => e.time === 42)).toBe(true);
  });

  it("'inherit' (plain): the lines as they were, and a debug copy in the run log only", async () => {
    const { events, raw } = await run('inherit');
    expect(raw.split('\n')).toEqual(
      expect.arrayContaining(['dptrain worker: backend cpu (cpu)', 'dptrain worker: E_DATA_INVALID: no labelled sample with index 7']),
    );
    expect(events).toHaveLength(5);
    expect(events.every((e) => e.level === 'debug')).toBe(true);
  });

  it("'ignore' drops them", async () => {
    const { events, raw } = await run('ignore');
    expect(events).toEqual([]);
    expect(raw).toBe('');
  });

  it('classifies lines', () => {
    expect(workerLineLevel('joined as w1 at step 0')).toBe('debug');
    expect(workerLineLevel('(node:12) Warning: something')).toBe('warn');
    expect(workerLineLevel('cannot reach ws://x: ECONNREFUSED')).toBe('warn');
    expect(workerLineLevel('refused: E_BASE_HASH: other base')).toBe('error');
  });
});
