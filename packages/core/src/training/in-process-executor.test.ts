import { describe, expect, it, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import type { Sample } from '../data/types.js';
import { EventBus } from '../events/bus.js';
import type { RunEvent } from '../events/types.js';
import { InProcessExecutor } from './in-process-executor.js';
import { LinearReplica } from './linear-replica.testutil.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const samples: Sample[] = Array.from({ length: 11 }, (_, i) => ({ split: 'labelled', index: i, name: `${i}.jpg`, path: `/x/${i}.jpg`, label: i % 3 }));

describe('InProcessExecutor', () => {
  it('micro-batches average to the full-batch gradient (weighted by sample count)', async () => {
    const whole = new InProcessExecutor(new LinearReplica());
    const micro = new InProcessExecutor(new LinearReplica(), { microBatch: 4 });
    await whole.beginPhase('head');
    await micro.beginPhase('head');
    const ctx = { phase: 'head' as const, epoch: 0, step: 0 };
    const a = await whole.computeGradients(samples, ctx);
    const b = await micro.computeGradients(samples, ctx);
    expect(b.count).toBe(11);
    expect(b.correct).toBe(a.correct);
    expect(b.loss).toBeCloseTo(a.loss, 5);
    for (let i = 0; i < a.gradients.length; i++) expect(b.gradients[i]).toBeCloseTo(a.gradients[i] as number, 5);
    expect(a.workers).toEqual([expect.objectContaining({ id: 'local', samples: 11 })]);
  });

  it('beginPhase applies given weights and returns the phase spec; predict gathers chunks in order with progress', async () => {
    const events: RunEvent[] = [];
    const bus = new EventBus();
    bus.on((e) => events.push(e));
    const ex = new InProcessExecutor(new LinearReplica(), { predictChunk: 4, bus });
    const head = await ex.beginPhase('head');
    const ft = await ex.beginPhase('fine_tune');
    expect(ft.weights.length).toBe(head.weights.length + 4);
    const w = ft.weights.map((_, i) => 0.01 * i);
    const again = await ex.beginPhase('fine_tune', w);
    expect(Array.from(again.weights)).toEqual(Array.from(w));
    const all = await ex.predict(samples, 'evaluate');
    expect(all.length).toBe(33);
    const progress = events.filter((e) => e.type === 'progress');
    expect(progress.map((e) => (e as { done: number }).done)).toEqual([4, 8, 11]);
  });
});
