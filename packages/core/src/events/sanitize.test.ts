import { describe, expect, it } from 'vitest';
import { EventBus } from './bus.js';
import { sanitizeEvent, stripControl } from './sanitize.js';
import type { RunEvent } from './types.js';

describe('stripControl and sanitizeEvent', () => {
  it('removes escape sequences, control characters and bidi overrides, and keeps the text', () => {
    expect(stripControl('\u001b[2J\u001b[1;31mred\u001b[0m')).toBe('red');
    expect(stripControl('a\u001b]0;title\u0007b')).toBe('ab');
    expect(stripControl('a\u009b6nb\u0000c\u007fd\u202ee')).toBe('abcde');
    expect(stripControl('tab\tstays')).toBe('tab\tstays');
    expect(stripControl('two\nlines\r\nhere')).toBe('two lines here');
    expect(stripControl('two\nlines', { keepNewlines: true })).toBe('two\nlines');
    expect(stripControl('plain text')).toBe('plain text');
  });

  it('cleans every string of an event (nested too), keeps line breaks in log messages, and passes clean events through as they are', () => {
    const joined: RunEvent = { type: 'worker_joined', time: 1, worker: { id: 'w1', host: 'h\u001b[31most\nx', backend: 'cpu', device: 'd', batchCapacity: 8 } };
    expect(sanitizeEvent(joined)).toEqual({ ...joined, worker: { ...joined.worker, host: 'host x' } });
    const log: RunEvent = { type: 'log', time: 1, level: 'warn', message: 'line 1\n\u001b[2Jline 2' };
    expect(sanitizeEvent(log)).toEqual({ ...log, message: 'line 1\nline 2' });
    const clean: RunEvent = { type: 'worker_lost', time: 1, id: 'w1', reason: 'gone' };
    expect(sanitizeEvent(clean)).toBe(clean);
  });

  it('the event bus hands listeners sanitized events', () => {
    const bus = new EventBus();
    const got: RunEvent[] = [];
    bus.on((e) => got.push(e));
    bus.emit({ type: 'frame_rejected', time: 1, code: 'E_PROTOCOL_SCHEMA', reason: "'\u001b]0;x\u0007evil' message" });
    expect(got[0]).toMatchObject({ reason: "'evil' message" });
  });
});
