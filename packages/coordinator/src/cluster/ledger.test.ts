import { describe, expect, it } from 'vitest';
import { SampleLedger } from './ledger.js';

describe('SampleLedger.rollBackTo', () => {
  it('forgets the steps from the rollback point on, so replayed steps are counted once', () => {
    const l = new SampleLedger();
    l.add('head', 0, [0, 1], 0);
    l.add('head', 0, [2, 3], 1);
    l.add('head', 1, [0, 1], 2);
    l.add('head', 1, [2], 3);
    l.rollBackTo(2);
    expect(l.summary()).toEqual([{ phase: 'head', epoch: 0, counted: 4, distinct: 4, duplicates: 0 }]);
    // the replay
    l.add('head', 1, [0, 1], 2);
    l.add('head', 1, [2, 3], 3);
    expect(l.summary()).toEqual([
      { phase: 'head', epoch: 0, counted: 4, distinct: 4, duplicates: 0 },
      { phase: 'head', epoch: 1, counted: 4, distinct: 4, duplicates: 0 },
    ]);
    // within an epoch: step 1 went, its samples are no longer counted
    l.rollBackTo(1);
    expect(l.summary()).toEqual([{ phase: 'head', epoch: 0, counted: 2, distinct: 2, duplicates: 0 }]);
  });
});
