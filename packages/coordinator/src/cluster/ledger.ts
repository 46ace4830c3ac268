import type { PhaseName } from '@dptrain/core';

/** Per-epoch accounting of the training samples whose gradients were counted, to prove none is lost or doubled. */
export interface EpochSampleCount {
  phase: PhaseName;
  epoch: number;
  /** Sample gradients counted in the epoch (with repeats). */
  counted: number;
  /** Distinct samples counted. */
  distinct: number;
  /** Samples counted more than once. */
  duplicates: number;
}

export class SampleLedger {
  private readonly epochs = new Map<string, { phase: PhaseName; epoch: number; counts: Map<number, number>; counted: number }>();
  /** What each global step added (for a rollback). */
  private readonly bySteps: { step: number; phase: PhaseName; epoch: number; indices: number[] }[] = [];

  /** Counts the samples of a step's accepted part (`step`: the global step it belongs to, for rollBackTo). */
  add(phase: PhaseName, epoch: number, indices: ArrayLike<number>, step?: number): void {
    if (step !== undefined) this.bySteps.push({ step, phase, epoch, indices: Array.from(indices) });
    const key = `${phase}:${epoch}`;
    let e = this.epochs.get(key);
    if (!e) {
      e = { phase, epoch, counts: new Map(), counted: 0 };
      this.epochs.set(key, e);
    }
    for (let i = 0; i < indices.length; i++) {
      const k = indices[i]!;
      e.counts.set(k, (e.counts.get(k) ?? 0) + 1);
    }
    e.counted += indices.length;
  }

  /**
   * Forgets what the steps numbered `step` and later added (the run rolled back to a checkpoint taken after `step`
   * steps, and will count them again).
   */
  rollBackTo(step: number): void {
    for (let i = this.bySteps.length - 1; i >= 0; i--) {
      const s = this.bySteps[i]!;
      if (s.step < step) continue;
      const e = this.epochs.get(`${s.phase}:${s.epoch}`);
      if (e) {
        for (const k of s.indices) {
          const c = (e.counts.get(k) ?? 0) - 1;
          if (c > 0) e.counts.set(k, c);
          else e.counts.delete(k);
        }
        e.counted -= s.indices.length;
        if (e.counted === 0) this.epochs.delete(`${s.phase}:${s.epoch}`);
      }
      this.bySteps.splice(i, 1);
    }
  }

  summary(): EpochSampleCount[] {
    return [...this.epochs.values()].map((e) => {
      let duplicates = 0;
      for (const c of e.counts.values()) if (c > 1) duplicates++;
      return { phase: e.phase, epoch: e.epoch, counted: e.counted, distinct: e.counts.size, duplicates };
    });
  }
}
