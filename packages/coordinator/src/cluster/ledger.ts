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

  add(phase: PhaseName, epoch: number, indices: ArrayLike<number>): void {
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

  summary(): EpochSampleCount[] {
    return [...this.epochs.values()].map((e) => {
      let duplicates = 0;
      for (const c of e.counts.values()) if (c > 1) duplicates++;
      return { phase: e.phase, epoch: e.epoch, counted: e.counted, distinct: e.counts.size, duplicates };
    });
  }
}
