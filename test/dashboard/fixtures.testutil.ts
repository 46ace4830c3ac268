import type { RunEvent, StepWorkerStat } from '@dptrain/core';

export const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

/** A worker_joined event. */
export function joined(id: string, time = T0, host = `host-${id}`): RunEvent {
  return { type: 'worker_joined', time, worker: { id, host, backend: 'wasm', device: 'cpu x1', batchCapacity: 16 } };
}

export function runStarted(time = T0, workers = 2): RunEvent {
  return {
    type: 'run_started',
    time,
    runId: 'r-test',
    runDir: '/tmp/r-test',
    backend: 'wasm',
    device: 'cpu x1',
    workers,
    trainSamples: 320,
    valSamples: 80,
    testSamples: 0,
    classes: ['a', 'b', 'c'],
  };
}

export function phaseStarted(time = T0, epochs = 2, stepsPerEpoch = 10): RunEvent {
  return { type: 'phase_started', time, phase: 'head', epochs, stepsPerEpoch, learningRate: 1e-3, trainableParams: 1234 };
}

export function step(
  stepNo: number,
  time: number,
  opts: { loss?: number; stepMs?: number; workers?: StepWorkerStat[]; straggler?: string; epoch?: number; stepsPerEpoch?: number } = {},
): RunEvent {
  const workers = opts.workers ?? [
    { id: 'w1', samples: 16, computeMs: 100, bytesIn: 1000, bytesOut: 2000 },
    { id: 'w2', samples: 16, computeMs: 200, bytesIn: 1000, bytesOut: 2000 },
  ];
  const samples = workers.reduce((a, w) => a + w.samples, 0);
  const spe = opts.stepsPerEpoch ?? 10;
  return {
    type: 'step_completed',
    time,
    phase: 'head',
    epoch: opts.epoch ?? Math.floor((stepNo - 1) / spe),
    step: stepNo,
    stepInEpoch: ((stepNo - 1) % spe) + 1,
    stepsPerEpoch: spe,
    loss: opts.loss ?? 2 / stepNo,
    samples,
    stepMs: opts.stepMs ?? 250,
    learningRate: 1e-3,
    workers,
    straggler: opts.straggler ?? 'w2',
  };
}

/** A run with two workers (epochs numbered from 0, steps in the epoch from 1, as the recipe emits them), one phase (2 epochs x 10 steps), `steps` steps done, 1 s apart. */
export function runEvents(steps: number): RunEvent[] {
  const ev: RunEvent[] = [runStarted(), joined('w1', T0 + 1), joined('w2', T0 + 2), phaseStarted(T0 + 10)];
  ev.push({ type: 'epoch_started', time: T0 + 11, phase: 'head', epoch: 0 });
  for (let i = 1; i <= steps; i++) {
    if (i === 11) {
      ev.push({
        type: 'epoch_completed',
        time: T0 + 10_500,
        phase: 'head',
        epoch: 0,
        trainLoss: 1,
        trainAccuracy: 0.5,
        valLoss: 1.1,
        valAccuracy: 0.6,
        learningRate: 1e-3,
        epochMs: 10_000,
      });
      ev.push({ type: 'epoch_started', time: T0 + 10_600, phase: 'head', epoch: 1 });
    }
    ev.push(step(i, T0 + 10 + i * 1000));
  }
  return ev;
}
