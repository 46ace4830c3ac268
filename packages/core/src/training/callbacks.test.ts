import { describe, expect, it } from 'vitest';
import type { RunEvent } from '../events/types.js';
import { BestCheckpoint, CallbackList, EarlyStopping, ReduceLrOnPlateau, type EpochLogs, type TrainingControl } from './callbacks.js';

function makeControl(): TrainingControl & { weights: Float32Array; lr: number; events: RunEvent[] } {
  const c = {
    weights: new Float32Array([0]) as Float32Array,
    lr: 0.1,
    events: [] as RunEvent[],
    stopTraining: false,
    getWeights: () => c.weights,
    setWeights: async (w: Float32Array) => {
      c.weights = w;
    },
    getLearningRate: () => c.lr,
    setLearningRate: (lr: number) => {
      c.lr = lr;
    },
    emit: (e: RunEvent) => c.events.push(e),
    now: () => 1234,
  };
  return c;
}

const logs = (valAccuracy: number, valLoss: number): EpochLogs => ({ trainLoss: 1, trainAccuracy: 0.5, valLoss, valAccuracy, learningRate: 0.1 });

describe('callbacks', () => {
  it('EarlyStopping stops after `patience` epochs without gain and restores the best weights', async () => {
    const ctl = makeControl();
    const es = new EarlyStopping({ patience: 2 });
    const list = new CallbackList([es]);
    list.setControl(ctl);
    await list.onTrainBegin();
    const accs = [0.5, 0.7, 0.65, 0.7, 0.6];
    let epochsRun = 0;
    for (let e = 0; e < accs.length && !ctl.stopTraining; e++) {
      ctl.weights = new Float32Array([e]);
      await list.onEpochEnd(e, logs(accs[e] as number, 1));
      epochsRun++;
    }
    expect(epochsRun).toBe(4); // best at epoch 1, no gain at 2 and 3 (0.7 is not > 0.7)
    expect(es.stoppedEpoch).toBe(3);
    await list.onTrainEnd();
    expect(Array.from(ctl.weights)).toEqual([1]);
    expect(ctl.events.filter((e) => e.type === 'early_stopping' && e.stopped)).toHaveLength(1);
    expect(ctl.events.every((e) => e.time === 1234)).toBe(true);
  });

  it('ReduceLROnPlateau multiplies the rate after `patience` epochs without val-loss gain', async () => {
    const ctl = makeControl();
    const r = new ReduceLrOnPlateau({ factor: 0.5, patience: 2 });
    r.setControl(ctl);
    r.onTrainBegin();
    const losses = [1.0, 0.9, 0.95, 0.91, 0.92, 0.93, 0.5];
    const lrs: number[] = [];
    losses.forEach((l, e) => {
      r.onEpochEnd(e, logs(0.5, l));
      lrs.push(ctl.lr);
    });
    expect(lrs).toEqual([0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025]);
    expect(ctl.events.filter((e) => e.type === 'lr_changed')).toHaveLength(2);
  });

  it('BestCheckpoint tracks the best epoch and hands a copy of its weights to onBest, keeping none itself', async () => {
    const ctl = makeControl();
    const seen: { epoch: number; weights: Float32Array }[] = [];
    const b = new BestCheckpoint({ onBest: (weights, epoch) => void seen.push({ epoch, weights }) });
    b.setControl(ctl);
    b.onTrainBegin();
    for (const [e, acc] of [0.2, 0.6, 0.4, 0.8].entries()) {
      ctl.weights = new Float32Array([10 + e]);
      await b.onEpochEnd(e, logs(acc, 1));
    }
    expect(seen.map((s) => s.epoch)).toEqual([0, 1, 3]);
    expect(Array.from(seen.at(-1)?.weights ?? [])).toEqual([13]);
    ctl.weights[0] = 99; // the copy handed out is not aliased
    expect(Array.from(seen.at(-1)?.weights ?? [])).toEqual([13]);
    expect(b.bestEpoch).toBe(3);
    expect(b.exportState()).toEqual({ best: 0.8, bestEpoch: 3 });
    // the state of a checkpoint written while it still kept the weights
    b.importState({ best: 0.5, bestEpoch: 1, bestWeights: new Float32Array([7]) });
    expect(b.exportState()).toEqual({ best: 0.5, bestEpoch: 1 });
  });

  it('exports and imports state so a restored list behaves the same', async () => {
    const ctl = makeControl();
    const mk = (): CallbackList => new CallbackList([new EarlyStopping({ patience: 2 }), new ReduceLrOnPlateau({ patience: 1 })]);
    const a = mk();
    a.setControl(ctl);
    await a.onTrainBegin();
    await a.onEpochEnd(0, logs(0.5, 1));
    await a.onEpochEnd(1, logs(0.4, 1.1));
    const state = a.exportState();
    const ctl2 = makeControl();
    ctl2.lr = ctl.lr;
    const b = mk();
    b.setControl(ctl2);
    await b.onTrainBegin();
    b.importState(JSON.parse(JSON.stringify(state)) as Record<string, unknown>);
    await a.onEpochEnd(2, logs(0.45, 1.2));
    await b.onEpochEnd(2, logs(0.45, 1.2));
    expect(ctl2.stopTraining).toBe(ctl.stopTraining);
    expect(ctl.stopTraining).toBe(true);
    expect(ctl2.lr).toBe(ctl.lr);
  });
});
