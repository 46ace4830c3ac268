import { describe, expect, it } from 'vitest';
import type { RunEvent } from '@dptrain/core';
import {
  clusterThroughput,
  dashboardReducer,
  initialDashboardState,
  percentile,
  ReplayFilter,
  phaseEtaMs,
  phaseProgress,
  sparkline,
  stepTimeP50,
  stepTimeP99,
  type DashboardState,
} from '../../packages/dashboard/src/index.js';
import { T0, joined, phaseStarted, runEvents, runStarted, step } from './fixtures.testutil.js';

const reduce = (events: RunEvent[], init: DashboardState = initialDashboardState()): DashboardState => events.reduce(dashboardReducer, init);

describe('dashboardReducer', () => {
  it('does not mutate its input state', () => {
    const s0 = initialDashboardState();
    const frozen = JSON.stringify(s0);
    const s1 = dashboardReducer(s0, runStarted());
    expect(JSON.stringify(s0)).toBe(frozen);
    expect(s1).not.toBe(s0);
    expect(s1.runId).toBe('r-test');
    expect(s1.status).toBe('running');
  });

  it('tracks phase, epoch, step and progress', () => {
    const s = reduce(runEvents(13));
    expect(s.phase?.name).toBe('head');
    expect(s.phase?.epochOrdinal).toBe(2);
    expect(s.phase?.stepsInEpoch).toBe(3);
    expect(s.step).toBe(13);
    const p = phaseProgress(s)!;
    expect(p.done).toBe(13);
    expect(p.total).toBe(20);
    expect(p.fraction).toBeCloseTo(0.65);
    expect(s.valAccSeries).toEqual([0.6]);
    expect(s.lastEpoch?.valAccuracy).toBe(0.6);
    expect(s.lossSeries).toHaveLength(13);
    expect(s.lossSeries[12]).toBeCloseTo(2 / 13);
  });

  it('computes the ETA from the step pace and the injected clock', () => {
    const s = reduce(runEvents(10)); // steps 1 s apart, 10 of 20 done, last at T0+10_010
    const last = T0 + 10 + 10 * 1000;
    expect(phaseEtaMs(s, last)).toBeCloseTo(10_000, -1);
    // 400 ms into the next step: 400 ms less to go
    expect(phaseEtaMs(s, last + 400)).toBeCloseTo(9_600, -1);
    expect(phaseEtaMs(initialDashboardState(), last)).toBeUndefined();
  });

  it('computes throughput and p50/p99 over a bounded window', () => {
    const init = initialDashboardState({ window: 5 });
    const ev: RunEvent[] = [phaseStarted()];
    const ms = [100, 100, 100, 100, 100, 1000, 200, 300, 400, 500];
    ms.forEach((m, i) => ev.push(step(i + 1, T0 + i * 1000, { stepMs: m })));
    const s = reduce(ev, init);
    expect(s.stepMsWindow).toEqual([1000, 200, 300, 400, 500]);
    expect(stepTimeP50(s)).toBe(400);
    expect(stepTimeP99(s)).toBe(1000);
    // 5 steps x 32 samples in 2.4 s
    expect(clusterThroughput(s)).toBeCloseTo((5 * 32 * 1000) / 2400);
    expect(s.samplesTotal).toBe(320);
  });

  it("shows each worker's share of the last step and its batch capacity", () => {
    let s = reduce(runEvents(1));
    expect(s.workers.map((w) => [w.share, w.batchCapacity])).toEqual([
      [0.5, 16],
      [0.5, 16],
    ]);
    s = dashboardReducer(
      s,
      step(2, T0 + 5000, {
        workers: [
          { id: 'w1', samples: 24, computeMs: 100, bytesIn: 0, bytesOut: 0 },
          { id: 'w2', samples: 8, computeMs: 100, bytesIn: 0, bytesOut: 0 },
        ],
      }),
    );
    expect(s.workers.map((w) => w.share)).toEqual([0.75, 0.25]);
    // a worker that sat a step out has no share of it
    s = dashboardReducer(s, step(3, T0 + 6000, { workers: [{ id: 'w1', samples: 32, computeMs: 100, bytesIn: 0, bytesOut: 0 }], straggler: 'w1' }));
    expect(s.workers.map((w) => w.share)).toEqual([1, 0]);
  });

  it("keeps an agent's local workers' shares of the last step; a step it sat out zeroes them", () => {
    let s = reduce(runEvents(1));
    // as the agent lists them (the order its workers answered in); the rows come in id order
    const local = [
      { id: 'w10', samples: 1, computeMs: 10 },
      { id: 'w2', samples: 1, computeMs: 0 },
      { id: 'w1', samples: 6, computeMs: 60 },
    ];
    s = dashboardReducer(
      s,
      step(2, T0 + 5000, {
        workers: [
          { id: 'w1', samples: 8, computeMs: 100, bytesIn: 0, bytesOut: 0, local },
          { id: 'w2', samples: 8, computeMs: 100, bytesIn: 0, bytesOut: 0 },
        ],
      }),
    );
    expect(s.workers[0]!.local).toEqual([
      { id: 'w1', share: 6 / 16, imgPerSec: 100 },
      { id: 'w2', share: 1 / 16, imgPerSec: 0 },
      { id: 'w10', share: 1 / 16, imgPerSec: 100 },
    ]);
    expect(s.workers[1]!.local).toBeUndefined();
    s = dashboardReducer(s, step(3, T0 + 6000, { workers: [{ id: 'w2', samples: 16, computeMs: 100, bytesIn: 0, bytesOut: 0 }] }));
    expect(s.workers[0]!.local!.map((l) => l.share)).toEqual([0, 0, 0]);
  });

  it('keeps one row per worker with rate, step ms, stragglers, bytes and heartbeat', () => {
    let s = reduce(runEvents(4));
    expect(s.workers.map((w) => w.id)).toEqual(['w1', 'w2']);
    const w1 = s.workers[0]!;
    const w2 = s.workers[1]!;
    expect(w1.host).toBe('host-w1');
    expect(w1.backend).toBe('wasm');
    expect(w1.imgPerSec).toBeCloseTo(160);
    expect(w2.imgPerSec).toBeCloseTo(80);
    expect(w2.lastStepMs).toBe(200);
    expect(w2.stragglerCount).toBe(4);
    expect(w1.stragglerCount).toBe(0);
    expect(w1.bytesIn).toBe(4000);
    expect(w1.bytesOut).toBe(8000);
    expect(w1.state).toBe('computing');
    // a heartbeat with larger cumulative totals wins; a smaller one does not go back
    s = dashboardReducer(s, { type: 'worker_heartbeat', time: T0 + 20_000, id: 'w1', bytesIn: 50_000, bytesOut: 10 });
    expect(s.workers[0]!.bytesIn).toBe(50_000);
    expect(s.workers[0]!.bytesOut).toBe(8000);
    expect(s.workers[0]!.lastHeartbeat).toBe(T0 + 20_000);
    s = dashboardReducer(s, { type: 'worker_lost', time: T0 + 21_000, id: 'w2', reason: 'heartbeat timeout' });
    expect(s.workers[1]!.state).toBe('lost');
    expect(s.workers[1]!.lostReason).toBe('heartbeat timeout');
    expect(s.recent.at(-1)?.text).toContain('w2 lost');
    // the same id joining again revives the row and keeps its history
    s = dashboardReducer(s, joined('w2', T0 + 22_000, 'other-host'));
    expect(s.workers).toHaveLength(2);
    expect(s.workers[1]!.state).toBe('idle');
    expect(s.workers[1]!.host).toBe('other-host');
    expect(s.workers[1]!.stragglerCount).toBe(4);
  });

  it('records recent events: joins, checkpoint, early stopping, phase, warnings; bounded', () => {
    const ev: RunEvent[] = [
      ...runEvents(2),
      { type: 'checkpoint_written', time: T0 + 5000, path: '/tmp/r/ckpt-2', step: 2 },
      { type: 'early_stopping', time: T0 + 6000, wait: 1, patience: 3, stopped: false },
      { type: 'lr_changed', time: T0 + 6500, learningRate: 1e-5, reason: 'fine-tune' },
      { type: 'frame_rejected', time: T0 + 7000, workerId: 'w1', code: 'E_GRADIENT_NONFINITE', reason: 'NaN' },
      { type: 'log', time: T0 + 7100, level: 'debug', message: 'not shown' },
      { type: 'log', time: T0 + 7150, level: 'info', message: 'coordinator listening' },
      { type: 'log', time: T0 + 7200, level: 'warn', message: 'disk almost full' },
    ];
    const s = reduce(ev);
    const texts = s.recent.map((r) => r.text).join('\n');
    expect(texts).toMatch(/worker w1 joined from host-w1/);
    expect(texts).toMatch(/phase head/);
    expect(texts).toMatch(/checkpoint at step 2/);
    expect(texts).toMatch(/early stopping: 1\/3/);
    expect(texts).toMatch(/learning rate 1e-5/);
    expect(texts).toMatch(/E_GRADIENT_NONFINITE/);
    expect(texts).not.toMatch(/not shown/);
    expect(texts).toMatch(/coordinator listening/);
    expect(texts).toMatch(/disk almost full/);
    expect(s.earlyStopping).toEqual({ wait: 1, patience: 3, stopped: false });
    expect(s.learningRate).toBe(1e-5);

    const small = reduce(ev, initialDashboardState({ recentEvents: 3 }));
    expect(small.recent).toHaveLength(3);
    expect(small.recent.at(-1)?.text).toBe('disk almost full');
  });

  it('shows waiting for workers until enough are connected', () => {
    let s = reduce([runStarted(), { type: 'waiting_for_workers', time: T0 + 1, connected: 0, required: 2 }]);
    expect(s.status).toBe('waiting');
    expect(s.waiting).toEqual({ connected: 0, required: 2 });
    s = reduce([joined('w1'), joined('w2'), phaseStarted(T0 + 5)], s);
    expect(s.status).toBe('running');
    s = dashboardReducer(s, { type: 'waiting_for_workers', time: T0 + 9, connected: 1, required: 2 });
    expect(s.status).toBe('waiting');
    s = dashboardReducer(s, step(1, T0 + 10));
    expect(s.status).toBe('running');
  });

  it('tracks long tasks and restarts their clock when a new pass begins', () => {
    let s = initialDashboardState();
    s = dashboardReducer(s, { type: 'progress', time: T0, task: 'validate', done: 0, total: 100 });
    s = dashboardReducer(s, { type: 'progress', time: T0 + 1000, task: 'validate', done: 50, total: 100 });
    expect(s.tasks).toEqual([{ task: 'validate', done: 50, total: 100, startedAt: T0, updatedAt: T0 + 1000 }]);
    s = dashboardReducer(s, { type: 'progress', time: T0 + 5000, task: 'validate', done: 0, total: 40 });
    expect(s.tasks[0]!.startedAt).toBe(T0 + 5000);
  });

  it('marks the run completed and sets workers idle', () => {
    const s = reduce([
      ...runEvents(3),
      { type: 'run_completed', time: T0 + 9000, valAccuracy: 0.8, valLoss: 0.5, steps: 3, wallMs: 9000, submissionPath: '/tmp/s.csv' },
    ]);
    expect(s.status).toBe('completed');
    expect(s.completed?.submissionPath).toBe('/tmp/s.csv');
    expect(s.workers.every((w) => w.state === 'idle')).toBe(true);
  });

  it('shows steps of a run joined mid-way (no phase_started seen)', () => {
    const s = reduce([step(57, T0, { stepsPerEpoch: 10 })]);
    expect(s.step).toBe(57);
    expect(s.phase?.stepsPerEpoch).toBe(10);
    expect(s.workers).toHaveLength(2);
  });
});

describe('helpers', () => {
  it('percentile uses nearest rank', () => {
    expect(percentile([], 50)).toBeUndefined();
    expect(percentile([5], 99)).toBe(5);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50)).toBe(5);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99)).toBe(10);
  });
  it('sparkline scales to the range and bounds the width', () => {
    expect(sparkline([0, 1], 10)).toBe('▁█');
    expect(sparkline([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 5)).toHaveLength(5);
    expect(sparkline([3, 3, 3], 5)).toBe('▄▄▄');
    expect(sparkline([], 5)).toBe('');
  });
});

describe('ReplayFilter', () => {
  it('drops the history replayed after a reconnect, keeps new events', () => {
    const f = new ReplayFilter();
    const ev = runEvents(3);
    const sameTime = [joined('w7', T0 + 50_000), joined('w8', T0 + 50_000)];
    const first = [...ev, ...sameTime];
    expect(first.every((e) => f.accept(e))).toBe(true);
    f.reconnected();
    // the coordinator sends its history again, then a new event at the same time as the last ones, then later ones
    const fresh = joined('w9', T0 + 50_000);
    const later = step(4, T0 + 60_000);
    const passed = [...first, fresh, later].filter((e) => f.accept(e));
    expect(passed).toEqual([fresh, later]);
  });
});
