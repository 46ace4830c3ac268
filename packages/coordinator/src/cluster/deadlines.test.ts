import { describe, expect, it } from 'vitest';
import { DEFAULT_REQUEST_DEADLINES, RequestDeadlines } from './deadlines.js';
import { toStepGuardOptions } from './step-guard-flags.js';

describe('RequestDeadlines', () => {
  it('gives a first request the first-step timeout, later ones factor x the slowest measured time, floored', () => {
    const d = new RequestDeadlines({ firstStepTimeoutMs: 60_000, floorMs: 1000, factor: 10, window: 2 });
    expect(d.deadlineMs('w1', 'step', 'head', 8)).toBe(60_000);
    d.record('w1', 'step', 'head', 8, 80); // 10 ms a sample
    expect(d.deadlineMs('w1', 'step', 'head', 8)).toBe(1000); // 800 ms, floored
    expect(d.deadlineMs('w1', 'step', 'head', 32)).toBe(3200);
    d.record('w1', 'step', 'head', 4, 200); // 50 ms a sample: the slowest of the window counts
    expect(d.deadlineMs('w1', 'step', 'head', 8)).toBe(4000);
    d.record('w1', 'step', 'head', 8, 8);
    d.record('w1', 'step', 'head', 8, 8); // the 50 ms one leaves the window of 2
    expect(d.deadlineMs('w1', 'step', 'head', 8)).toBe(1000);
    // per worker, kind and phase; phase switches always get the first-step timeout
    expect(d.deadlineMs('w2', 'step', 'head', 8)).toBe(60_000);
    expect(d.deadlineMs('w1', 'predict', 'head', 8)).toBe(60_000);
    expect(d.deadlineMs('w1', 'step', 'fine_tune', 8)).toBe(60_000);
    expect(d.deadlineMs('w1', 'phase', 'head', 0)).toBe(60_000);
    d.forget('w1');
    expect(d.deadlineMs('w1', 'step', 'head', 8)).toBe(60_000);
    expect(new RequestDeadlines().options).toEqual(DEFAULT_REQUEST_DEADLINES);
  });

  it('a worker whose GPU runs through the PTX JIT gets 45 minutes for its first requests (or a longer --first-step-timeout)', () => {
    const d = new RequestDeadlines({ floorMs: 1000 });
    d.markPtxJit('w1');
    expect(d.deadlineMs('w1', 'step', 'head', 8)).toBe(2_700_000);
    expect(d.deadlineMs('w1', 'phase', 'head', 0)).toBe(2_700_000);
    expect(d.deadlineMs('w2', 'step', 'head', 8)).toBe(300_000);
    d.record('w1', 'step', 'head', 8, 80);
    expect(d.deadlineMs('w1', 'step', 'head', 8)).toBe(1000); // measured from then on, as any worker
    d.forget('w1');
    expect(d.deadlineMs('w1', 'step', 'head', 8)).toBe(300_000);
    const long = new RequestDeadlines({ firstStepTimeoutMs: 3_600_000 });
    long.markPtxJit('w1');
    expect(long.deadlineMs('w1', 'step', 'head', 8)).toBe(3_600_000);
  });
});

describe('step guard flags', () => {
  it('turns seconds into milliseconds and refuses bad values with E_CONFIG naming the flag', () => {
    expect(
      toStepGuardOptions({ maxGradNormRatio: '50', maxGradNorm: '1e3', firstStepTimeout: '600', stepTimeoutFloor: '2.5', stepTimeoutFactor: '4' }),
    ).toEqual({
      gradientNorm: { maxRatio: 50, maxNorm: 1000 },
      deadlines: { firstStepTimeoutMs: 600_000, floorMs: 2500, factor: 4 },
    });
    expect(toStepGuardOptions({})).toEqual({ gradientNorm: {}, deadlines: {} });
    expect(() => toStepGuardOptions({ maxGradNormRatio: '1' })).toThrow(
      expect.objectContaining({ code: 'E_CONFIG', message: expect.stringContaining('--max-grad-norm-ratio') }),
    );
    expect(() => toStepGuardOptions({ firstStepTimeout: 'soon' })).toThrow(/--first-step-timeout: 'soon'/);
  });
});
