import { describe, expect, it } from 'vitest';
import { parseRunConfig } from '../config.js';
import { phaseBaseLearningRate, phaseSchedule, scheduledLearningRate } from './lr-schedule.js';

const base = { baseLr: 0.1, stepsPerEpoch: 10, epochs: 5 };

describe('learning-rate schedules (reference formulas)', () => {
  it('linear warmup counts steps: step k of W runs at base·(k+1)/W, then the schedule takes over', () => {
    const o = { ...base, kind: 'cosine' as const, warmupEpochs: 1 };
    for (let k = 0; k < 10; k++) expect(scheduledLearningRate(k, o)).toBeCloseTo((0.1 * (k + 1)) / 10, 12);
    expect(scheduledLearningRate(10, o)).toBeCloseTo(0.1, 12);
  });

  it('cosine decays from base to min-lr over the steps after the warmup', () => {
    const o = { ...base, kind: 'cosine' as const, minLr: 0.001, warmupEpochs: 1 };
    const total = 50;
    const warm = 10;
    for (const k of [10, 17, 30, 42, 49]) {
      const want = 0.001 + (0.1 - 0.001) * 0.5 * (1 + Math.cos((Math.PI * (k - warm)) / (total - warm)));
      expect(scheduledLearningRate(k, o)).toBeCloseTo(want, 12);
    }
    expect(scheduledLearningRate(30, o)).toBeCloseTo((0.1 + 0.001) / 2, 12);
  });

  it('step multiplies by the decay every lr-step-epochs epochs', () => {
    const o = { ...base, epochs: 6, kind: 'step' as const, stepEpochs: 2, decay: 0.5 };
    expect([0, 19, 20, 39, 40, 59].map((k) => scheduledLearningRate(k, o))).toEqual([0.1, 0.1, 0.05, 0.05, 0.025, 0.025]);
    // default: every third of the phase, decay 0.1
    expect(scheduledLearningRate(20, { ...base, epochs: 6, kind: 'step' })).toBeCloseTo(0.01, 12);
  });

  it('constant and plateau leave the rate alone after the warmup (plateau: ReduceLrOnPlateau owns it)', () => {
    expect(scheduledLearningRate(3, { ...base, kind: 'plateau' })).toBeUndefined();
    expect(scheduledLearningRate(3, { ...base, kind: 'constant', warmupEpochs: 0.5 })).toBeCloseTo(0.08, 12);
    expect(scheduledLearningRate(5, { ...base, kind: 'constant', warmupEpochs: 0.5 })).toBe(0.1);
    expect(scheduledLearningRate(6, { ...base, kind: 'constant', warmupEpochs: 0.5 })).toBeUndefined();
  });

  it('--scale-lr multiplies by global batch / reference batch; phase 2 takes its own schedule and warmup', () => {
    const c = parseRunConfig({
      dataDir: '/x',
      batchSize: 128,
      scaleLr: true,
      referenceBatch: 32,
      lrSchedule: 'cosine',
      warmupEpochs: 2,
      fineTuneLrSchedule: 'constant',
      fineTuneWarmupEpochs: 0,
      headPhase: { epochs: 10, learningRate: 1e-3 },
      fineTunePhase: { epochs: 4, learningRate: 1e-4 },
    });
    expect(phaseBaseLearningRate(c, 'head')).toBeCloseTo(4e-3, 15);
    expect(phaseBaseLearningRate(c, 'fine_tune')).toBeCloseTo(4e-4, 15);
    expect(phaseSchedule(c, 'head', 7)).toMatchObject({ kind: 'cosine', warmupEpochs: 2, epochs: 10, stepsPerEpoch: 7 });
    expect(phaseSchedule(c, 'fine_tune', 7)).toMatchObject({ kind: 'constant', warmupEpochs: 0, epochs: 4 });
  });
});
