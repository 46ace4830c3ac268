import { describe, expect, it } from 'vitest';
import { parseRunConfig } from '../config.js';
import { resumeMismatches, runFingerprint } from './run-fingerprint.js';

const base = parseRunConfig({ dataDir: '/d', headPhase: { epochs: 3, learningRate: 1e-3 } });
const at = { phase: 'head' as const, phaseDone: false };

describe('run fingerprint', () => {
  it('covers every setting but the safe ones, nested settings by their dotted names', () => {
    const fp = runFingerprint(base);
    expect(fp['batchSize']).toBe('32');
    expect(fp['head.units']).toBe('256');
    expect(fp['augmentation.rotationRange']).toBe('0');
    expect(fp['headPhase.learningRate']).toBe('0.001');
    expect(fp['dataDir']).toBeUndefined();
    expect(fp['checkpointEvery']).toBeUndefined();
    expect(fp['fineTunePhase.epochs']).toBeUndefined();
  });

  it('lets the head epochs change only while the head phase runs', () => {
    const more = runFingerprint({ ...base, headPhase: { ...base.headPhase, epochs: 9 } });
    expect(resumeMismatches(runFingerprint(base), more, at)).toEqual([]);
    expect(resumeMismatches(runFingerprint(base), more, { phase: 'head', phaseDone: true })).toEqual(['headPhase.epochs: 3 → 9']);
    expect(resumeMismatches(runFingerprint(base), more, { phase: 'fine_tune', phaseDone: false })).toEqual(['headPhase.epochs: 3 → 9']);
  });

  it('a setting the checkpoint does not record counts only when now set away from its default', () => {
    const stored = runFingerprint(base);
    delete stored['labelSmoothing'];
    expect(resumeMismatches(stored, runFingerprint(base), at)).toEqual([]);
    expect(resumeMismatches(stored, runFingerprint({ ...base, labelSmoothing: 0.1 }), at)).toEqual(['labelSmoothing: (not set) → 0.1']);
    // an optional setting set on one side only
    expect(resumeMismatches(runFingerprint(base), runFingerprint({ ...base, weightDecay: 0.01 }), at)).toEqual(['weightDecay: (not set) → 0.01']);
  });
  it('counts the cached views only when the run augments', () => {
    const views = (n: number, augment: boolean) =>
      runFingerprint({ ...base, cachedViews: n, augmentation: augment ? { ...base.augmentation, horizontalFlip: true } : base.augmentation });
    // without augmentation the views change nothing: a checkpoint from before the default became 3 still resumes
    expect(resumeMismatches(views(0, false), views(3, false), at)).toEqual([]);
    expect(resumeMismatches(views(0, true), views(3, true), at)).toEqual(['cachedViews: 0 → 3']);
  });
});
