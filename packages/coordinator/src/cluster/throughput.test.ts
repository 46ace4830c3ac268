import { describe, expect, it } from 'vitest';
import { ThroughputMeter } from './throughput.js';

describe('ThroughputMeter', () => {
  it('seeds unmeasured peers from their worker count, then follows an EMA of samples/s', () => {
    const m = new ThroughputMeter({ smoothing: 0.5 });
    const a = { id: 'a', seed: 4 };
    const b = { id: 'b', seed: 1 };
    // nothing measured: the seeds (an agent with 4 workers gets 4x an agent with 1)
    expect(m.weights([a, b])).toEqual([4, 1]);
    m.record(a, 40, 1000); // 40 samples/s
    // b is not measured yet: its seed times a's rate per seed (10)
    expect(m.weights([a, b])).toEqual([40, 10]);
    m.record(b, 10, 500); // 20 samples/s
    expect(m.weights([a, b])).toEqual([40, 20]);
    m.record(b, 30, 500); // 60 samples/s: 20 + 0.5 * (60 - 20)
    expect(m.rate('b')).toBe(40);
    m.record(b, 0, 100); // nothing to learn from an empty or untimed reply
    m.record(b, 10, 0);
    expect(m.rate('b')).toBe(40);
    m.forget('a');
    expect(m.weights([a, b])).toEqual([160, 40]);
  });

  it('refuses a smoothing outside (0, 1]', () => {
    expect(() => new ThroughputMeter({ smoothing: 0 })).toThrow(/smoothing/);
    expect(() => new ThroughputMeter({ smoothing: 1.5 })).toThrow(/smoothing/);
  });
});
