import { bucketRanges, packGradients, type GradientPrecision, type MessageOf, type Outgoing } from '@dptrain/core';

/**
 * Where a step's gradient goes out bucket by bucket: elements [offset, offset + values.length) of `total`, fp32, in
 * order of offset. The link packs each bucket in the step's wire precision as it sends it.
 */
export type GradientOut = (offset: number, total: number, values: Float32Array) => void;

/** The `grad_bucket` message of one bucket of step request `id`, packed in `precision` (fp32: the values themselves). */
export function gradBucket(id: number, offset: number, total: number, values: Float32Array, precision: GradientPrecision): Outgoing<'grad_bucket'> {
  return { type: 'grad_bucket', id, offset, total, ...packGradients(values, precision) };
}

/**
 * The reply to step `msg` as the link sends it: a reply that carries its whole gradient (a plain worker's) is cut into
 * `grad_bucket` frames of the step's `bucketFloats` (views of the packed array, no copy), sent first, and the reply
 * goes with an empty gradient; a step without `bucketFloats`, or a reply already streamed (empty), goes as it is.
 */
export function sendStepReply(msg: MessageOf<'step'>, reply: Outgoing<'gradients'>, send: (m: Outgoing) => void): void {
  const g = reply.gradients;
  if (msg.bucketFloats === undefined || g.length === 0) return send(reply);
  for (const r of bucketRanges(g.length, msg.bucketFloats)) {
    send({ type: 'grad_bucket', id: msg.id, offset: r.start, total: g.length, dtype: reply.dtype, gradients: g.subarray(r.start, r.end) });
  }
  send({ ...reply, gradients: reply.dtype === 'fp32' ? new Float32Array(0) : new Uint16Array(0) });
}
