import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { EventBus } from '@dptrain/core';
import { createRunMetrics, observabilityHandler, startMetricsServer, type MetricsServer } from '../../packages/dashboard/src/observability/index.js';
import { T0, joined, runEvents, runStarted } from './fixtures.testutil.js';

/** Value of one sample line (`name{labels} value`) of a Prometheus text exposition. */
function sample(body: string, name: string, labels = ''): number | undefined {
  const prefix = labels ? `${name}{${labels}} ` : `${name} `;
  const line = body.split('\n').find((l) => l.startsWith(prefix));
  return line === undefined ? undefined : Number(line.slice(prefix.length));
}

let server: MetricsServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('Prometheus metrics', () => {
  it('serves /metrics, /healthz and /readyz with values from the events', async () => {
    const bus = new EventBus();
    let now = T0 + 30_000;
    const metrics = createRunMetrics(bus, { clock: { now: () => now }, minWorkers: 2 });
    server = await startMetricsServer({ metrics, port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${server.port}`;

    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    let ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ ready: false, connected: 0, required: 2 });

    bus.emit(joined('w1'));
    expect((await fetch(`${base}/readyz`)).status).toBe(503);
    bus.emit(joined('w2'));
    ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ready: true, connected: 2 });

    for (const e of runEvents(12).filter((e) => e.type !== 'worker_joined')) bus.emit(e);
    bus.emit({ type: 'worker_heartbeat', time: T0 + 20_000, id: 'w1', bytesIn: 100_000, bytesOut: 100 });
    bus.emit({ type: 'checkpoint_written', time: T0 + 20_000, path: '/tmp/c', step: 12 });
    bus.emit({ type: 'frame_rejected', time: T0 + 20_100, workerId: 'w2', code: 'E_GRADIENT_SHAPE', reason: 'bad' });

    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const body = await res.text();
    for (const name of [
      'dptrain_steps_total',
      'dptrain_samples_total',
      'dptrain_train_loss',
      'dptrain_val_accuracy',
      'dptrain_worker_throughput_samples_per_second',
      'dptrain_worker_step_seconds',
      'dptrain_worker_bytes_in_total',
      'dptrain_worker_bytes_out_total',
      'dptrain_connected_workers',
      'dptrain_checkpoint_age_seconds',
    ]) {
      expect(body).toContain(`# TYPE ${name} `);
    }
    expect(sample(body, 'dptrain_steps_total')).toBe(12);
    expect(sample(body, 'dptrain_samples_total')).toBe(12 * 32);
    expect(sample(body, 'dptrain_train_loss')).toBeCloseTo(2 / 12);
    expect(sample(body, 'dptrain_val_accuracy')).toBeCloseTo(0.6);
    expect(sample(body, 'dptrain_learning_rate')).toBeCloseTo(1e-3);
    expect(sample(body, 'dptrain_connected_workers')).toBe(2);
    expect(sample(body, 'dptrain_worker_throughput_samples_per_second', 'worker="w1"')).toBeCloseTo(160);
    expect(sample(body, 'dptrain_worker_throughput_samples_per_second', 'worker="w2"')).toBeCloseTo(80);
    expect(sample(body, 'dptrain_worker_step_seconds_count', 'worker="w2"')).toBe(12);
    expect(sample(body, 'dptrain_worker_step_seconds_sum', 'worker="w2"')).toBeCloseTo(2.4);
    expect(sample(body, 'dptrain_worker_step_seconds_bucket', 'le="0.25",worker="w2"')).toBe(12);
    expect(sample(body, 'dptrain_worker_step_seconds_bucket', 'le="0.1",worker="w2"')).toBe(0);
    expect(sample(body, 'dptrain_step_seconds_count')).toBe(12);
    // bytes: 12 steps x 1000 in, then a heartbeat total of 100000 raises w1 to that; out stays at the step sum
    expect(sample(body, 'dptrain_worker_bytes_in_total', 'worker="w1"')).toBe(100_000);
    expect(sample(body, 'dptrain_worker_bytes_in_total', 'worker="w2"')).toBe(12_000);
    expect(sample(body, 'dptrain_worker_bytes_out_total', 'worker="w1"')).toBe(24_000);
    expect(sample(body, 'dptrain_worker_straggler_total', 'worker="w2"')).toBe(12);
    expect(sample(body, 'dptrain_checkpoint_age_seconds')).toBe(10);
    expect(sample(body, 'dptrain_frames_rejected_total', 'code="E_GRADIENT_SHAPE"')).toBe(1);

    now += 5000;
    bus.emit({ type: 'worker_lost', time: now, id: 'w2', reason: 'gone' });
    const body2 = await (await fetch(`${base}/metrics`)).text();
    expect(sample(body2, 'dptrain_checkpoint_age_seconds')).toBe(15);
    expect(sample(body2, 'dptrain_connected_workers')).toBe(1);
    expect(sample(body2, 'dptrain_workers_lost_total')).toBe(1);
    // still ready: the run has started
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });

  it('mounts on another HTTP server and leaves its other routes alone', async () => {
    const metrics = createRunMetrics(undefined, { minWorkers: 1 });
    metrics.observe(runStarted());
    const handler = observabilityHandler(metrics);
    const http = createServer((req, res) => {
      if (handler(req, res)) return;
      res.writeHead(200);
      res.end('cluster route');
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const port = (http.address() as AddressInfo).port;
    try {
      expect(await (await fetch(`http://127.0.0.1:${port}/other`)).text()).toBe('cluster route');
      expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
      const body = await (await fetch(`http://127.0.0.1:${port}/metrics?x=1`)).text();
      expect(body).toContain('dptrain_steps_total 0');
      expect((await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'POST' })).status).toBe(405);
    } finally {
      http.closeAllConnections();
      await new Promise((r) => http.close(r));
    }
  });
});
