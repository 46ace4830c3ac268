import { describe, expect, it } from 'vitest';
import { EventBus, parseRunConfig } from '@dptrain/core';
import { ClusterServer } from '../../packages/coordinator/src/cluster/index.js';
import { createRunMetrics, observabilityHandler } from '../../packages/dashboard/src/observability/index.js';
import { dptrain, waitFor } from '../cluster/fixtures.testutil.js';
import { joined, phaseStarted, runStarted, step } from './fixtures.testutil.js';

/**
 * `dptrain dashboard --connect` (plain, since its stdout is a pipe) against a real coordinator server on
 * loopback: it authenticates, receives the history, then live events, and exits when the run is over.
 * The same server mounts /metrics and /readyz through `httpHandlers`.
 */
describe('dptrain dashboard --connect (remote observer)', () => {
  it('replays the history, follows live events, refuses a wrong token, and serves metrics on the coordinator port', async () => {
    const bus = new EventBus();
    const metrics = createRunMetrics(bus, { minWorkers: 2 });
    const token = 'observer-test-secret';
    const server = new ClusterServer({
      token,
      config: parseRunConfig({ dataDir: '/nonexistent' }),
      bus,
      httpHandlers: [observabilityHandler(metrics)],
    });
    const url = await server.listen();
    const http = url.replace(/^ws/, 'http');
    try {
      const now = Date.now();
      bus.emit(runStarted(now));
      bus.emit(joined('w1', now + 1));
      bus.emit(joined('w2', now + 2));
      bus.emit(phaseStarted(now + 3, 2, 10));
      for (let i = 1; i <= 3; i++) bus.emit(step(i, now + 10 + i));

      const good = dptrain(['dashboard', '--connect', url, '--plain', '--log-every', '1'], { DPTRAIN_TOKEN: token });
      const bad = dptrain(['dashboard', '--connect', url, '--plain', '--wait-for', '1'], { DPTRAIN_TOKEN: 'wrong' });

      // history
      await waitFor(good, (o) => /head epoch 1\/2 {2}step 3 /.test(o), 90_000, 'replayed steps');
      const out = good.output();
      expect(out).toContain('run r-test started');
      expect(out).toContain('worker w2 joined from host-w2');
      expect(out).toMatch(/step 1 .*step 2 .*step 3 /s);

      // live
      bus.emit(step(4, Date.now()));
      bus.emit({ type: 'worker_lost', time: Date.now(), id: 'w2', reason: 'live loss' });
      await waitFor(good, (o) => o.includes('worker w2 lost: live loss'), 30_000, 'live events');
      expect(good.output()).toMatch(/step 4 /);

      // metrics on the coordinator's own port
      const body = await (await fetch(`${http}/metrics`)).text();
      expect(body).toMatch(/^dptrain_steps_total 4$/m);
      expect(body).toMatch(/^dptrain_connected_workers 1$/m);
      expect((await fetch(`${http}/readyz`)).status).toBe(200);

      expect(await bad.exited).not.toBe(0);
      expect(bad.output()).toMatch(/E_AUTH/);
      expect(bad.output()).not.toContain('run r-test started');

      // the run ends and the coordinator goes away: the dashboard exits cleanly
      bus.emit({ type: 'run_completed', time: Date.now(), valAccuracy: 0.5, valLoss: 1, steps: 4, wallMs: 1000 });
      await waitFor(good, (o) => o.includes('done: 4 steps'), 30_000, 'run end');
      await server.close();
      expect(await good.exited).toBe(0);
    } finally {
      await server.close().catch(() => undefined);
    }
  });
});
