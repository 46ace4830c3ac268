import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { systemClock, type Clock, type EventBus, type RunEvent } from '@dptrain/core';

export interface RunMetricsOptions {
  /** Registry to register into. Default: a new private registry (never the global one). */
  registry?: Registry;
  /** Clock for the checkpoint age. Default: the system clock. */
  clock?: Clock;
  /** Workers needed before /readyz says ready (a `waiting_for_workers` event overrides it). Default 1. */
  minWorkers?: number;
  /** Also export Node process metrics (CPU, memory, event loop). Default false. */
  processMetrics?: boolean;
  /** Metric name prefix. Default 'dptrain_'. */
  prefix?: string;
}

/** Prometheus metrics of a run, fed by RunEvents. */
export class RunMetrics {
  readonly registry: Registry;
  private readonly clock: Clock;
  private minWorkers: number;
  private runStarted = false;
  private runCompleted = false;
  private lastCheckpointTime: number | undefined;
  private readonly connected = new Set<string>();
  private readonly bytes = new Map<string, { in: number; out: number }>();
  private off: (() => void) | undefined;

  readonly steps: Counter;
  readonly samples: Counter;
  readonly loss: Gauge;
  readonly trainAccuracy: Gauge;
  readonly valAccuracy: Gauge;
  readonly valLoss: Gauge;
  readonly learningRate: Gauge;
  readonly epoch: Gauge;
  readonly stepSeconds: Histogram;
  readonly workerThroughput: Gauge;
  readonly workerStepSeconds: Histogram;
  readonly workerBytesIn: Counter;
  readonly workerBytesOut: Counter;
  readonly stragglers: Counter;
  readonly connectedWorkers: Gauge;
  readonly checkpointAge: Gauge;
  readonly checkpoints: Counter;
  readonly framesRejected: Counter;
  readonly workersLost: Counter;
  readonly runCompletedGauge: Gauge;

  constructor(options: RunMetricsOptions = {}) {
    const p = options.prefix ?? 'dptrain_';
    this.registry = options.registry ?? new Registry();
    this.clock = options.clock ?? systemClock;
    this.minWorkers = options.minWorkers ?? 1;
    const registers = [this.registry];
    const timeBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
    this.steps = new Counter({ name: `${p}steps_total`, help: 'Training steps completed', registers });
    this.samples = new Counter({ name: `${p}samples_total`, help: 'Training samples processed', registers });
    this.loss = new Gauge({ name: `${p}train_loss`, help: 'Training loss of the last step', registers });
    this.trainAccuracy = new Gauge({ name: `${p}train_accuracy`, help: 'Training accuracy of the last epoch', registers });
    this.valAccuracy = new Gauge({ name: `${p}val_accuracy`, help: 'Validation accuracy of the last epoch', registers });
    this.valLoss = new Gauge({ name: `${p}val_loss`, help: 'Validation loss of the last epoch', registers });
    this.learningRate = new Gauge({ name: `${p}learning_rate`, help: 'Current learning rate', registers });
    this.epoch = new Gauge({ name: `${p}epoch`, help: 'Current epoch (as the events number it)', labelNames: ['phase'], registers });
    this.stepSeconds = new Histogram({ name: `${p}step_seconds`, help: 'Cluster step time', buckets: timeBuckets, registers });
    this.workerThroughput = new Gauge({
      name: `${p}worker_throughput_samples_per_second`,
      help: "Worker's samples per second of compute in its last step",
      labelNames: ['worker'],
      registers,
    });
    this.workerStepSeconds = new Histogram({
      name: `${p}worker_step_seconds`,
      help: "Worker's compute time per step",
      labelNames: ['worker'],
      buckets: timeBuckets,
      registers,
    });
    this.workerBytesIn = new Counter({ name: `${p}worker_bytes_in_total`, help: 'Bytes received from the worker', labelNames: ['worker'], registers });
    this.workerBytesOut = new Counter({ name: `${p}worker_bytes_out_total`, help: 'Bytes sent to the worker', labelNames: ['worker'], registers });
    this.stragglers = new Counter({ name: `${p}worker_straggler_total`, help: 'Steps in which the worker was the slowest', labelNames: ['worker'], registers });
    this.connectedWorkers = new Gauge({ name: `${p}connected_workers`, help: 'Workers connected now', registers });
    this.connectedWorkers.set(0);
    const self = this;
    this.checkpointAge = new Gauge({
      name: `${p}checkpoint_age_seconds`,
      help: 'Seconds since the last checkpoint was written (absent before the first)',
      registers,
      collect() {
        if (self.lastCheckpointTime !== undefined) this.set(Math.max(0, (self.clock.now() - self.lastCheckpointTime) / 1000));
      },
    });
    this.checkpoints = new Counter({ name: `${p}checkpoints_total`, help: 'Checkpoints written', registers });
    this.framesRejected = new Counter({ name: `${p}frames_rejected_total`, help: 'Frames rejected by the coordinator', labelNames: ['code'], registers });
    this.workersLost = new Counter({ name: `${p}workers_lost_total`, help: 'Workers lost', registers });
    this.runCompletedGauge = new Gauge({ name: `${p}run_completed`, help: '1 once the run has completed', registers });
    this.runCompletedGauge.set(0);
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: p });
  }

  /** Subscribes to a bus; returns the unsubscribe function (also called by `close`). */
  attach(bus: EventBus): () => void {
    this.off?.();
    this.off = bus.on(this.observe);
    return this.off;
  }

  close(): void {
    this.off?.();
    this.off = undefined;
  }

  /** Ready: the run has started, or at least the required number of workers is connected. */
  isReady(): boolean {
    return this.runStarted || this.connected.size >= this.minWorkers;
  }

  /** Why /readyz answers what it answers. */
  readiness(): { ready: boolean; connected: number; required: number; runStarted: boolean; runCompleted: boolean } {
    return { ready: this.isReady(), connected: this.connected.size, required: this.minWorkers, runStarted: this.runStarted, runCompleted: this.runCompleted };
  }

  private addBytes(worker: string, totalIn: number, totalOut: number, cumulative: boolean): void {
    const b = this.bytes.get(worker) ?? { in: 0, out: 0 };
    const nextIn = cumulative ? Math.max(b.in, totalIn) : b.in + totalIn;
    const nextOut = cumulative ? Math.max(b.out, totalOut) : b.out + totalOut;
    if (nextIn > b.in) this.workerBytesIn.inc({ worker }, nextIn - b.in);
    if (nextOut > b.out) this.workerBytesOut.inc({ worker }, nextOut - b.out);
    this.bytes.set(worker, { in: nextIn, out: nextOut });
  }

  /** Feeds one event. */
  observe = (e: RunEvent): void => {
    switch (e.type) {
      case 'run_started':
        this.runStarted = true;
        return;
      case 'waiting_for_workers':
        this.minWorkers = e.required;
        return;
      case 'phase_started':
        this.learningRate.set(e.learningRate);
        return;
      case 'epoch_started':
        this.epoch.set({ phase: e.phase }, e.epoch);
        return;
      case 'step_completed':
        this.steps.inc();
        this.samples.inc(e.samples);
        if (Number.isFinite(e.loss)) this.loss.set(e.loss);
        this.learningRate.set(e.learningRate);
        this.stepSeconds.observe(e.stepMs / 1000);
        for (const w of e.workers) {
          if (w.computeMs > 0) this.workerThroughput.set({ worker: w.id }, (w.samples * 1000) / w.computeMs);
          this.workerStepSeconds.observe({ worker: w.id }, w.computeMs / 1000);
          this.addBytes(w.id, w.bytesIn, w.bytesOut, false);
        }
        if (e.straggler) this.stragglers.inc({ worker: e.straggler });
        return;
      case 'epoch_completed':
        this.trainAccuracy.set(e.trainAccuracy);
        this.valAccuracy.set(e.valAccuracy);
        this.valLoss.set(e.valLoss);
        this.learningRate.set(e.learningRate);
        return;
      case 'worker_joined':
        this.connected.add(e.worker.id);
        this.connectedWorkers.set(this.connected.size);
        return;
      case 'worker_lost':
        this.connected.delete(e.id);
        this.connectedWorkers.set(this.connected.size);
        this.workersLost.inc();
        this.workerThroughput.remove({ worker: e.id });
        return;
      case 'worker_heartbeat':
        this.addBytes(e.id, e.bytesIn, e.bytesOut, true);
        return;
      case 'checkpoint_written':
        this.lastCheckpointTime = e.time;
        this.checkpoints.inc();
        return;
      case 'lr_changed':
        this.learningRate.set(e.learningRate);
        return;
      case 'frame_rejected':
        this.framesRejected.inc({ code: e.code }, e.count ?? 1);
        return;
      case 'run_completed':
        this.runCompleted = true;
        this.runCompletedGauge.set(1);
        this.valAccuracy.set(e.valAccuracy);
        this.valLoss.set(e.valLoss);
        return;
      default:
        return;
    }
  };
}

/** Creates the metrics and, given a bus, subscribes them. */
export function createRunMetrics(bus?: EventBus, options: RunMetricsOptions = {}): RunMetrics {
  const m = new RunMetrics(options);
  if (bus) m.attach(bus);
  return m;
}
