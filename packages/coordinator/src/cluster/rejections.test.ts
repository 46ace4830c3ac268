import { describe, expect, it } from 'vitest';
import type { RunEvent } from '@dptrain/core';
import { RejectionLog } from './rejections.js';
import { EventHistory } from './event-history.js';
import { isLoopbackHost, plainTextExposureWarning } from './exposure.js';

type Rejected = Extract<RunEvent, { type: 'frame_rejected' }>;

describe('RejectionLog', () => {
  it('reports the first `burst` rejections of an address, then one summary per code when the window ends', () => {
    let t = 1000;
    const out: Rejected[] = [];
    const log = new RejectionLog((e) => out.push(e as Rejected), { now: () => t }, { burst: 3, windowMs: 10_000 });
    for (let i = 0; i < 50; i++) log.record('10.0.0.1', i % 2 ? 'E_PROTOCOL_DECODE' : 'E_AUTH', `bad ${i}`);
    log.record('10.0.0.2', 'E_AUTH', 'other host');
    expect(out.map((e) => e.address)).toEqual(['10.0.0.1', '10.0.0.1', '10.0.0.1', '10.0.0.2']);
    t += 9_999;
    log.flush();
    expect(out).toHaveLength(4); // the window is not over yet
    t += 1;
    log.flush();
    const summaries = out.slice(4);
    expect(summaries.map((e) => [e.address, e.code, e.count])).toEqual([
      ['10.0.0.1', 'E_PROTOCOL_DECODE', 24],
      ['10.0.0.1', 'E_AUTH', 23],
    ]);
    expect(summaries[0]!.reason).toMatch(/24 more E_PROTOCOL_DECODE rejections from 10\.0\.0\.1 in 10 s.*last: bad 49/);
    // all 51 rejections are accounted for, once each
    expect(out.reduce((a, e) => a + (e.count ?? 1), 0)).toBe(51);
    // a new window starts afresh
    log.record('10.0.0.1', 'E_AUTH', 'again');
    expect(out.at(-1)!.count).toBeUndefined();
  });

  it('stop() emits what is held; past maxAddresses the oldest window is summed up early', () => {
    const out: Rejected[] = [];
    const log = new RejectionLog((e) => out.push(e as Rejected), { now: () => 0 }, { burst: 0, maxAddresses: 2 });
    log.record('a', 'E_AUTH', 'x');
    log.record('b', 'E_AUTH', 'x');
    expect(out).toHaveLength(0);
    log.record('c', 'E_AUTH', 'x');
    expect(out.map((e) => [e.address, e.count])).toEqual([['a', 1]]);
    log.stop();
    expect(out.map((e) => e.address)).toEqual(['a', 'b', 'c']);
  });
});

describe('EventHistory', () => {
  it('keeps run events and rejections in bounded histories of their own, merged in order, without heartbeats', () => {
    const h = new EventHistory({ maxRunEvents: 3, maxRejections: 2 });
    const log = (m: string): RunEvent => ({ type: 'log', time: 0, level: 'info', message: m });
    const rej = (c: string): RunEvent => ({ type: 'frame_rejected', time: 0, code: c, reason: '' });
    h.add(log('a'));
    for (let i = 0; i < 1000; i++) h.add(rej(`E${i}`));
    h.add({ type: 'worker_heartbeat', time: 0, id: 'w1', bytesIn: 0, bytesOut: 0 });
    h.add(log('b'));
    const names = h.snapshot().map((e) => (e.type === 'log' ? e.message : (e as Rejected).code));
    expect(names).toEqual(['a', 'E998', 'E999', 'b']);
  });
});

describe('exposure', () => {
  it('tells loopback from the rest, and warns only beyond loopback without TLS', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.5', 'coordinator.example', '128.0.0.1']) expect(isLoopbackHost(h), h).toBe(false);
    expect(plainTextExposureWarning('0.0.0.0', false)).toMatch(/every interface over plain ws/);
    expect(plainTextExposureWarning('0.0.0.0', true)).toBeUndefined();
    expect(plainTextExposureWarning('127.0.0.1', false)).toBeUndefined();
  });
});
