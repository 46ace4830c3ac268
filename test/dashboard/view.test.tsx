// tsx/vitest read no tsconfig here: ask esbuild for the automatic JSX runtime explicitly
/** @jsxRuntime automatic */
/** @jsxImportSource react */
import { afterEach, describe, expect, it } from 'vitest';
import { render, cleanup } from 'ink-testing-library';
import { EventBus, type Clock } from '@dptrain/core';
import { DashboardApp, DashboardStore, fitRows } from '../../packages/dashboard/src/index.js';
import { T0, joined, phaseStarted, runEvents, runStarted, step } from './fixtures.testutil.js';

const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));

/** The last frame once it contains `text` (ink renders input on its own schedule: a loaded machine can take a while), or the last frame after `timeoutMs`. */
async function frameWith(app: { lastFrame(): string | undefined }, text: string, timeoutMs = 5000): Promise<string> {
  const t0 = Date.now();
  for (;;) {
    const f = app.lastFrame() ?? '';
    if (f.includes(text) || Date.now() - t0 > timeoutMs) return f;
    await tick();
  }
}
const ARROW_DOWN = '\u001B[B';
const ARROW_UP = '\u001B[A';

function setup(opts: { maxWorkerRows?: number; now?: number } = {}) {
  const bus = new EventBus();
  const store = new DashboardStore({ throttleMs: 0 });
  store.attach(bus);
  const clock: Clock = { now: () => opts.now ?? T0 + 100_000 };
  let closedByQ = 0;
  let interrupts = 0;
  const app = render(
    <DashboardApp
      store={store}
      clock={clock}
      tickMs={0}
      maxWorkerRows={opts.maxWorkerRows ?? 8}
      onClose={() => closedByQ++}
      onInterrupt={() => interrupts++}
    />,
  );
  return { bus, store, app, closed: () => closedByQ, interrupts: () => interrupts };
}

afterEach(() => cleanup());

describe('DashboardApp (ink)', () => {
  it('shows the workers and a moving progress bar, frame by frame', async () => {
    const { bus, app } = setup();
    await tick();
    expect(app.lastFrame()).toContain('no workers yet');
    expect(app.lastFrame()).toContain('no training phase yet');

    const events = runEvents(5);
    for (const e of events) bus.emit(e);
    await tick();
    const f1 = app.lastFrame()!;
    expect(f1).toContain('run r-test');
    // each worker's share of the last step and its batch capacity, then img/s, step ms, stragglers
    expect(f1).toMatch(/w1\s+host-w1\s+wasm\/cpu x1\s+computing\s+50%\/16\s+160\.0\s+100\s+0/);
    expect(f1).toMatch(/w2\s+host-w2\s+wasm\/cpu x1\s+computing\s+50%\/16\s+80\.0\s+200\s+5/);
    expect(f1).toContain('workers 2 connected');
    expect(f1).toMatch(/step 5 /);
    expect(f1).toContain('5/20');
    expect(f1).toContain('25.0%');
    expect(f1).toMatch(/throughput 128\.0 img\/s/);
    expect(f1).toMatch(/lr 1e-3/);
    expect(f1).toContain('worker w2 joined');

    for (let i = 6; i <= 10; i++) bus.emit(step(i, T0 + 10 + i * 1000));
    await tick();
    const f2 = app.lastFrame()!;
    expect(f2).toMatch(/step 10 /);
    expect(f2).toContain('10/20');
    expect(f2).toContain('50.0%');
    // the bar itself grew
    const bar = (f: string) => (f.match(/█/g) ?? []).length;
    expect(bar(f2)).toBeGreaterThan(bar(f1));

    bus.emit({ type: 'worker_lost', time: T0 + 20_000, id: 'w2', reason: 'socket closed' });
    await tick();
    expect(app.lastFrame()).toMatch(/w2\s+host-w2\s+wasm\/cpu x1\s+lost/);
    expect(app.lastFrame()).toContain('workers 1 connected');
    expect(app.lastFrame()).toContain('worker w2 lost: socket closed');
  });

  it('draws loss and validation-accuracy sparklines and the long-task bar', async () => {
    const { bus, app } = setup();
    for (const e of runEvents(12)) bus.emit(e);
    bus.emit({ type: 'progress', time: T0 + 50_000, task: 'extract_features', done: 30, total: 120 });
    await tick();
    const f = app.lastFrame()!;
    expect(f).toMatch(/loss\s+[▁-█]{12}\s+0\.167/);
    expect(f).toMatch(/val acc\s+▄\s+60\.0% \(best 60\.0%\)/);
    expect(f).toMatch(/extract features\s+█+░+ 30\/120/);
  });

  it('scrolls the worker table with the arrow keys', async () => {
    const { bus, app } = setup({ maxWorkerRows: 3 });
    for (let i = 1; i <= 6; i++) bus.emit(joined(`w${i}`, T0 + i));
    let f = await frameWith(app, '(1-3 of 6');
    expect(f).toContain('(1-3 of 6');
    expect(f).toMatch(/^w1\s+host-w1/m);
    expect(f).not.toMatch(/^w4\s+host-w4/m);

    app.stdin.write(ARROW_DOWN);
    expect(await frameWith(app, '(2-4 of 6')).toContain('(2-4 of 6');
    app.stdin.write(ARROW_DOWN);
    f = await frameWith(app, '(3-5 of 6');
    expect(f).toContain('(3-5 of 6');
    expect(f).not.toMatch(/^w1\s+host-w1/m);
    expect(f).toMatch(/^w5\s+host-w5/m);

    for (let i = 0; i < 5; i++) {
      app.stdin.write(ARROW_DOWN);
      await tick();
    }
    expect(await frameWith(app, '(4-6 of 6')).toContain('(4-6 of 6'); // clamped at the end
    await tick(100);
    expect(app.lastFrame()).toContain('(4-6 of 6'); // and stays there

    app.stdin.write(ARROW_UP);
    expect(await frameWith(app, '(3-5 of 6')).toContain('(3-5 of 6');
  });

  it('q closes the view without touching the run; Ctrl+C is passed on', async () => {
    const { bus, app, store, closed, interrupts } = setup();
    for (const e of runEvents(3)) bus.emit(e);
    await tick();
    app.stdin.write('\u0003');
    await tick();
    expect(interrupts()).toBe(1);
    expect(closed()).toBe(0);
    app.stdin.write('q');
    await tick();
    expect(closed()).toBe(1);
    // the bus and its store still work: the run goes on
    bus.emit(step(4, T0 + 5000));
    expect(store.getState().step).toBe(4);
  });
});

describe('DashboardApp: agents', () => {
  /** A view with a started run and agent w1 on node-a: `local` cpu workers of capacity `capacity` in all. */
  function withAgent(local: number, capacity: number) {
    const view = setup();
    view.bus.emit(runStarted());
    view.bus.emit({
      type: 'worker_joined',
      time: T0 + 1,
      worker: { id: 'w1', host: 'node-a', backend: 'cpu', device: `${local} x cpu`, batchCapacity: capacity, localWorkers: local },
    });
    return view;
  }

  it("an agent is one row with the machine's share, the sum of its workers' capacities and G x device", async () => {
    const { bus, app } = withAgent(3, 6);
    bus.emit({ type: 'worker_joined', time: T0 + 2, worker: { id: 'w2', host: 'node-b', backend: 'cpu', device: 'cpu', batchCapacity: 2, localWorkers: 1 } });
    bus.emit(phaseStarted(T0 + 10));
    bus.emit(
      step(1, T0 + 1000, {
        workers: [
          { id: 'w1', samples: 12, computeMs: 100, bytesIn: 0, bytesOut: 0 },
          { id: 'w2', samples: 4, computeMs: 100, bytesIn: 0, bytesOut: 0 },
        ],
        straggler: 'w1',
      }),
    );
    await tick();
    const f = app.lastFrame()!;
    expect(f).toMatch(/w1\s+node-a\s+cpu\/3 x cpu\s+computing\s+75%\/6\s/);
    expect(f).toMatch(/w2\s+node-b\s+cpu\/cpu\s+computing\s+25%\/2\s/);
  });

  it("an agent's local workers get a row each under it: their share of the whole step and their img/s", async () => {
    const { bus, app } = withAgent(2, 8);
    bus.emit(joined('w2', T0 + 2, 'node-b'));
    bus.emit(phaseStarted(T0 + 10));
    const local = [
      { id: 'w1', samples: 8, computeMs: 50 },
      { id: 'w2', samples: 4, computeMs: 100 },
    ];
    bus.emit(
      step(1, T0 + 1000, {
        workers: [
          { id: 'w1', samples: 12, computeMs: 100, bytesIn: 0, bytesOut: 0, local },
          { id: 'w2', samples: 4, computeMs: 100, bytesIn: 0, bytesOut: 0 },
        ],
      }),
    );
    await tick();
    const lines = app.lastFrame()!.split('\n');
    const at = lines.findIndex((l) => /^w1\s+node-a/.test(l));
    expect(at).toBeGreaterThan(0);
    // under the agent, in order: its two local workers (50 % and 25 % of the 16 samples; 160 and 40 img/s), then w2
    expect(lines[at + 1]).toMatch(/^ {2}w1\s+50%\s+160\.0\s*$/);
    expect(lines[at + 2]).toMatch(/^ {2}w2\s+25%\s+40\.0\s*$/);
    expect(lines[at + 3]).toMatch(/^w2\s+node-b\s/);
  });
});

describe('fitRows', () => {
  it('shrinks the worker list and events to fit short terminals', () => {
    expect(fitRows(undefined, 0, 8, 6)).toEqual({ workerRows: 8, events: 6 });
    expect(fitRows(50, 0, 8, 6)).toEqual({ workerRows: 8, events: 6 });
    const small = fitRows(24, 1, 8, 6);
    expect(small.workerRows + small.events + 15 + 2).toBeLessThanOrEqual(24);
    expect(small.workerRows).toBeGreaterThanOrEqual(1);
    expect(fitRows(10, 0, 8, 6)).toEqual({ workerRows: 1, events: 1 });
  });
});
