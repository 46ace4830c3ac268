import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { allowedCpus, cpuSets, hasTaskset, parseCpuList } from './cpu-affinity.js';
import { spawnLocalWorkers, stopLocalWorkers, workerCpuSets } from './local-workers.js';

describe('cpu affinity of local workers', () => {
  it('parses Linux cpu lists and rejects anything else', () => {
    expect(parseCpuList('0-3,8,10-11')).toEqual([0, 1, 2, 3, 8, 10, 11]);
    expect(parseCpuList('5')).toEqual([5]);
    expect(() => parseCpuList('0-3,x')).toThrow(/'x' is not N or N-M/);
  });

  it('reads the allowed list from a status file, null without one', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dptrain-cpus-'));
    const f = path.join(dir, 'status');
    writeFileSync(f, 'Name:\tnode\nCpus_allowed:\tf\nCpus_allowed_list:\t2-3,6\nMems_allowed:\t1\n');
    expect(allowedCpus(f)).toEqual([2, 3, 6]);
    expect(allowedCpus(path.join(dir, 'missing'))).toBeNull();
  });

  it('gives each worker an equal, disjoint share, or none when workers outnumber CPUs', () => {
    expect(cpuSets([0, 1, 2, 3], 2)).toEqual([
      [0, 1],
      [2, 3],
    ]);
    expect(cpuSets([0, 1, 2, 3, 4], 2)).toEqual([
      [0, 1],
      [2, 3],
    ]);
    expect(cpuSets([4, 5], 2)).toEqual([[4], [5]]);
    expect(cpuSets([0, 1], 3)).toBeNull();
    expect(workerCpuSets({ count: 1, pinCpus: false })).toEqual({ sets: null, reason: 'pinning is off' });
  });

  const cpus = allowedCpus();
  const skip = !cpus || cpus.length < 2 || !hasTaskset();
  it.skipIf(skip)('starts real worker processes, each confined to its own CPUs', async () => {
    // workers that cannot reach their coordinator keep retrying: long enough to read their affinity
    const children = spawnLocalWorkers({ url: 'ws://127.0.0.1:9', token: 't', count: 2, dataDir: '/nonexistent', stdio: 'ignore' });
    try {
      const want = workerCpuSets({ count: 2 }).sets!;
      await new Promise((r) => setTimeout(r, 300));
      children.forEach((c, i) => {
        const status = readFileSync(`/proc/${c.pid}/status`, 'utf8');
        expect(parseCpuList(/^Cpus_allowed_list:\s*(.+)$/m.exec(status)![1]!), `worker ${i}`).toEqual(want[i]);
      });
      expect(new Set(want.flat()).size).toBe(want.flat().length); // disjoint
    } finally {
      await stopLocalWorkers(children);
    }
  });
});
