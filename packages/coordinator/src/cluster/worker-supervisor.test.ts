import { spawn, type ChildProcess } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { WorkerSupervisor } from './worker-supervisor.js';

/** Real child processes: `exits` says how each start of a slot ends (status, or 'run' to keep running). */
function supervised(plan: Record<number, (number | 'run')[]>, maxRestarts: number) {
  const starts: number[] = [];
  const logs: string[] = [];
  const capacity: number[] = [];
  const seen = new Map<number, number>();
  const sup = new WorkerSupervisor({
    count: Object.keys(plan).length,
    maxRestarts,
    restartDelayMs: 10,
    stopGraceMs: 2000,
    start: (slot): ChildProcess => {
      const k = seen.get(slot) ?? 0;
      seen.set(slot, k + 1);
      starts.push(slot);
      const how = plan[slot]![Math.min(k, plan[slot]!.length - 1)]!;
      return spawn(process.execPath, ['-e', how === 'run' ? 'setInterval(() => {}, 1000)' : `process.exit(${how})`], { stdio: 'ignore' });
    },
    log: (level, m) => logs.push(`${level}: ${m}`),
    onCapacity: (n) => capacity.push(n),
  });
  return { sup, starts, logs, capacity };
}

const until = async (cond: () => boolean, ms = 20_000): Promise<void> => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('WorkerSupervisor (real child processes)', () => {
  it('restarts a dead worker within the budget, then goes on with the survivors and says so', async () => {
    // slot 0 dies twice then runs; slot 1 runs; budget 1: the second death of slot 0 is final
    const { sup, starts, logs, capacity } = supervised({ 0: [1, 1, 'run'], 1: ['run'] }, 1);
    sup.start();
    await until(() => capacity.length === 1);
    expect(starts).toEqual([0, 1, 0]);
    expect(sup.restarts).toBe(1);
    expect(capacity).toEqual([1]);
    expect(sup.capacity).toBe(1);
    expect(logs[0]).toMatch(/^warn: local worker 1 \(pid \d+\) exited with status 1; restarting it \(restart 1 of 1, --max-restarts\)$/);
    expect(logs.at(-1)).toMatch(/restart budget is used up \(1 restarts, --max-restarts\): the run goes on with 1 of 2 workers$/);
    expect(sup.children).toHaveLength(1);
    await sup.stop();
    expect(sup.children).toHaveLength(0);
  });

  it('a worker that exits 0 (the run is over) is not restarted; none is after stop()', async () => {
    const { sup, starts, capacity } = supervised({ 0: [0], 1: ['run'] }, 3);
    sup.start();
    await until(() => sup.capacity === 1);
    const killed = sup.children[0]!;
    await sup.stop();
    expect(killed.signalCode ?? killed.exitCode).not.toBeNull();
    await new Promise((r) => setTimeout(r, 100));
    expect(starts).toEqual([0, 1]);
    expect(sup.restarts).toBe(0);
    expect(capacity).toEqual([]);
  });

  it('says when no worker is left', async () => {
    const { sup, logs, capacity } = supervised({ 0: [3] }, 0);
    sup.start();
    await until(() => capacity.length === 1);
    expect(capacity).toEqual([0]);
    expect(logs.at(-1)).toMatch(/^error: .*no local worker is left$/);
  });
});
