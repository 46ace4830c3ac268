import { describe, expect, it } from 'vitest';
import { DptrainError, PROTOCOL_VERSION, type MessageOf } from '@dptrain/core';
import type { Peer } from './peer.js';
import { checkedStepReply, stepWorkerStats, type StepPart } from './step-reply.js';

const peer = (id: string): Peer => ({ id }) as Peer;

function reply(count: number, local?: { id: string; samples: number; computeMs: number }[]): MessageOf<'gradients'> {
  return {
    v: PROTOCOL_VERSION,
    type: 'gradients',
    id: 1,
    dtype: 'fp32',
    gradients: new Float32Array([0.5, -0.25]),
    loss: 1,
    count,
    correct: 0,
    computeMs: 10,
    ...(local ? { local } : {}),
  };
}

const part = (p: Peer, count: number, local?: { id: string; samples: number; computeMs: number }[]): StepPart =>
  ({ peer: p, count, computeMs: 10, wallMs: 12, bytesIn: 100, bytesOut: 50, ...(local ? { local } : {}) }) as unknown as StepPart;

describe('step replies with local workers (an agent)', () => {
  it("accepts an agent's local figures that add up to its part, and refuses ones that do not, naming the agent", () => {
    expect(
      checkedStepReply(
        peer('w2'),
        8,
        reply(8, [
          { id: 'w1', samples: 5, computeMs: 3 },
          { id: 'w2', samples: 3, computeMs: 2 },
        ]),
        2,
        false,
      ).norm,
    ).toBeCloseTo(Math.hypot(0.5, 0.25));
    let err: unknown;
    try {
      checkedStepReply(peer('w2'), 8, reply(8, [{ id: 'w1', samples: 5, computeMs: 3 }]), 2, false);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DptrainError);
    expect((err as DptrainError).code).toBe('E_PROTOCOL_SCHEMA');
    expect((err as DptrainError).message).toBe("worker w2: its local workers' 5 samples are not the part's 8");
  });

  it("sums an agent's local workers over its parts of a step, per local id, in first-seen order", () => {
    const a = peer('w1');
    const b = peer('w2');
    const { workers } = stepWorkerStats([
      part(a, 4, [
        { id: 'w1', samples: 3, computeMs: 30 },
        { id: 'w2', samples: 1, computeMs: 10 },
      ]),
      part(b, 4),
      part(a, 4, [
        { id: 'w2', samples: 2, computeMs: 20 },
        { id: 'w3', samples: 2, computeMs: 25 },
      ]),
    ]);
    expect(workers.find((w) => w.id === 'w1')!.local).toEqual([
      { id: 'w1', samples: 3, computeMs: 30 },
      { id: 'w2', samples: 3, computeMs: 30 },
      { id: 'w3', samples: 2, computeMs: 25 },
    ]);
    expect(workers.find((w) => w.id === 'w2')!.local).toBeUndefined();
  });
});
