import {
  DptrainError,
  l2Norm,
  unpackGradients,
  type Clock,
  type GradientPrecision,
  type LocalWorkerStat,
  type MessageOf,
  type RangedGradient,
  type Sample,
  type StepContext,
  type StepWorkerStat,
} from '@dptrain/core';
import { GradientAssembly, type GradientBuffers } from './gradient-assembly.js';
import type { StreamedPart } from './streamed-merge.js';
import type { Peer } from './peer.js';

/** A worker's accepted answer for the samples [start, end) of a step (sharded steps: an empty gradient). */
export interface StepPart extends RangedGradient {
  peer: Peer;
  /** Id of the step request this part answered (a sharded step's ranges are keyed by it at the shards). */
  request: number;
  indices: number[];
  computeMs: number;
  wallMs: number;
  bytesIn: number;
  bytesOut: number;
  norm: number;
  /** Its place in a streamed merge (an agent's step). */
  streamed?: StreamedPart;
  /** An agent's part: how its local workers shared it. */
  local?: LocalWorkerStat[];
}

/** The accepted parts of a step, and what they cost each worker. */
export interface CollectedStep {
  accepted: StepPart[];
  workers: StepWorkerStat[];
  straggler: string | undefined;
  /** Gradients decoded for this step only (the merge may write into them). */
  owned: Set<Float32Array>;
  total: number;
  micro: number;
}

/**
 * The gradient and norm of a step reply of `peer` for `asked` samples, checked: the count, the correct count, and
 * the gradient's length and finite values (`size` floats; E_GRADIENT_SHAPE, E_PROTOCOL_SCHEMA, E_GRADIENT_NONFINITE
 * name the worker). A sharded step's reply carries no gradient (its ranges went to the shards), only its norm.
 * `decoded` is true when the gradient was decoded for this step only (the merge may then write into it). A reply
 * with an empty gradient came after its `grad_bucket` frames: the gradient is theirs (`buckets`).
 */
export function checkedStepReply(
  peer: Peer,
  asked: number,
  r: MessageOf<'gradients'>,
  size: number,
  sharded: boolean,
  buckets?: GradientAssembly,
): { gradients: Float32Array; norm: number; decoded: boolean } {
  if (r.count !== asked) throw new DptrainError('E_GRADIENT_SHAPE', `worker ${peer.id}: gradients over ${r.count} samples, asked for ${asked}`);
  if (r.correct > r.count) throw new DptrainError('E_PROTOCOL_SCHEMA', `worker ${peer.id}: ${r.correct} correct of ${r.count}`);
  const localSamples = r.local?.reduce((a, w) => a + w.samples, 0);
  if (localSamples !== undefined && localSamples !== r.count)
    throw new DptrainError('E_PROTOCOL_SCHEMA', `worker ${peer.id}: its local workers' ${localSamples} samples are not the part's ${r.count}`);
  if (sharded) {
    if (r.gradients.length !== 0 || r.norm === undefined || !Number.isFinite(r.norm))
      throw new DptrainError('E_GRADIENT_SHAPE', `worker ${peer.id}: a sharded step's reply needs an empty gradient and its norm`);
    return { gradients: new Float32Array(0), norm: r.norm, decoded: false };
  }
  const gradients = r.gradients.length === 0 && size > 0 && buckets ? buckets.finish() : unpackGradients(r, size, peer.id);
  return { gradients, norm: l2Norm(gradients), decoded: true };
}

/** One step request: the step, the part's samples and how to ask for them. */
export interface StepRequest {
  ctx: StepContext;
  part: readonly Sample[];
  /** The micro-batch of the step's averaging tree (it travels in the step message). */
  microBatch: number;
  /** The wire precision asked for (none: the run config's). */
  precision?: GradientPrecision;
  /** What a sharded step adds to the request (ShardedClusterExecutor). */
  extras?: { sharded?: boolean; weightsVersion?: number };
  deadlineMs: number;
  /** Floats of the phase's trainable vector. */
  size: number;
  /** Ask for the gradient in `grad_bucket` frames of this many floats. Default: whole, in the reply. */
  bucketFloats?: number | undefined;
  /** Its place in a streamed merge (an agent's step): each bucket goes there as it arrives, checked; a failed request leaves it. */
  streamed?: StreamedPart;
  /** Where the assembled gradient's memory comes from. Default: a fresh array. */
  buffers?: GradientBuffers;
  clock: Clock;
}

/** A step request's checked reply and what it cost (the bytes each way and the wall time). */
export interface StepReply {
  reply: MessageOf<'gradients'>;
  gradients: Float32Array;
  norm: number;
  decoded: boolean;
  /** Id of the request (a sharded step's ranges are keyed by it at the shards). */
  request: number;
  wallMs: number;
  bytesIn: number;
  bytesOut: number;
  streamed?: StreamedPart;
}

/** Asks `peer` for the mean gradient of a part of a step and checks the reply (`checkedStepReply`). */
export async function requestStepPart(peer: Peer, q: StepRequest): Promise<StepReply> {
  const inBefore = peer.bytesIn;
  const outBefore = peer.bytesOut;
  const t0 = q.clock.now();
  let request = 0;
  const buckets = new GradientAssembly(peer.id, q.size, q.streamed?.add, q.buffers);
  let stopReceiving = (): void => undefined;
  const asked = peer.request(
    'gradients',
    (id) => {
      request = id;
      stopReceiving = peer.receiveBuckets(id, (m) => buckets.add(m));
      return {
        type: 'step',
        id,
        phase: q.ctx.phase,
        epoch: q.ctx.epoch,
        step: q.ctx.step,
        indices: Uint32Array.from(q.part, (x) => x.index),
        microBatch: q.microBatch,
        ...(q.precision !== undefined ? { precision: q.precision } : {}),
        ...(q.bucketFloats !== undefined ? { bucketFloats: q.bucketFloats } : {}),
        ...q.extras,
      };
    },
    undefined,
    q.deadlineMs,
  );
  try {
    const reply = await asked.finally(() => stopReceiving());
    const wallMs = q.clock.now() - t0;
    const checked = checkedStepReply(peer, q.part.length, reply, q.size, !!q.extras?.sharded, buckets);
    const streamed = q.streamed ? { streamed: q.streamed } : {};
    return { reply, ...checked, request, wallMs, bytesIn: peer.bytesIn - inBefore, bytesOut: peer.bytesOut - outBefore, ...streamed };
  } catch (err) {
    q.streamed?.drop(); // lost, late or a bad reply: its buckets leave the merge, its samples are redone
    throw err;
  }
}

/**
 * The gradient buckets to ask `peer` for: from every worker of a merge that streams on (an agent's local workers),
 * and from an agent (it streams its merge); a plain worker of a merge that waits for the whole step sends its
 * gradient whole (one frame, decoded as a view: buckets would only cost copies). Undefined: whole.
 */
export function gradientBucketsFor(peer: Peer, streaming: boolean, bucketFloats: number): number | undefined {
  return streaming || peer.info?.localWorkers !== undefined ? bucketFloats : undefined;
}

/** The accepted part of step reply `q` of `peer` for `part`, the samples from `start` of the step. */
export function acceptedPart(peer: Peer, part: readonly Sample[], start: number, q: StepReply): StepPart {
  const r = q.reply;
  return {
    gradients: q.gradients,
    loss: r.loss,
    count: r.count,
    correct: r.correct,
    start,
    end: start + part.length,
    peer,
    request: q.request,
    indices: part.map((x) => x.index),
    computeMs: r.computeMs,
    wallMs: q.wallMs,
    bytesIn: q.bytesIn,
    bytesOut: q.bytesOut,
    norm: q.norm,
    ...(q.streamed ? { streamed: q.streamed } : {}),
    ...(r.local ? { local: r.local } : {}),
  };
}

/** Each worker's figures over a step's accepted parts, and the straggler (the longest wall time, with two or more). */
export function stepWorkerStats(accepted: readonly StepPart[]): { workers: StepWorkerStat[]; straggler: string | undefined } {
  const stats = new Map<string, StepWorkerStat & { wallMs: number }>();
  for (const p of accepted) {
    const st = stats.get(p.peer.id) ?? { id: p.peer.id, samples: 0, computeMs: 0, bytesIn: 0, bytesOut: 0, wallMs: 0 };
    st.samples += p.count;
    st.computeMs += p.computeMs;
    st.bytesIn += p.bytesIn;
    st.bytesOut += p.bytesOut;
    st.wallMs += p.wallMs;
    if (p.local) st.local = addLocalStats(st.local ?? [], p.local);
    stats.set(p.peer.id, st);
  }
  const workers = [...stats.values()];
  let straggler: string | undefined;
  let slowest = -1;
  for (const w of workers) if (w.wallMs > slowest) [slowest, straggler] = [w.wallMs, w.id];
  return { workers: workers.map(({ wallMs: _w, ...rest }) => rest), straggler: workers.length > 1 ? straggler : undefined };
}

/** An agent's local workers over two of its parts of a step: samples and compute time summed per local id, in first-seen order. */
function addLocalStats(into: LocalWorkerStat[], more: readonly LocalWorkerStat[]): LocalWorkerStat[] {
  const out = into.map((w) => ({ ...w }));
  for (const w of more) {
    const have = out.find((o) => o.id === w.id);
    if (have) {
      have.samples += w.samples;
      have.computeMs += w.computeMs;
    } else out.push({ ...w });
  }
  return out;
}
