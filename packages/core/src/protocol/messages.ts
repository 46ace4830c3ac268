import { z } from 'zod';
import { GradientPrecisionSchema, RunConfigSchema } from '../config.js';

/**
 * Version of the wire protocol; a peer speaking another version is refused with E_PROTOCOL_VERSION.
 * 2: `weights` and `weights_ack` carry `version` (was `step`), gradients may be bf16, the step message's
 * `precision` replaces `fp16`, the step message carries `microBatch`, `join` an agent's `localWorkers`, and gradients and weights may travel as bucket frames.
 * 3: a step message may carry `bucketFloats`; the gradient then comes back in `grad_bucket` frames, in order, before
 * the `gradients` reply (whose gradient is then empty), so an agent merges and sends each bucket on as it arrives.
 * 4: an agent's `gradients` reply carries `local`, its local workers' samples and compute time (the dashboard's rows).
 */
export const PROTOCOL_VERSION = 4;

const v = z.literal(PROTOCOL_VERSION);
// typed arrays of any buffer kind (TS 6 types z.instanceof as backed by ArrayBuffer only)
const typed = <T>(ctor: new (...args: never[]) => T, name: string) => z.custom<T>((x) => x instanceof ctor, { message: `expected a ${name}` });
const f32 = typed<Float32Array>(Float32Array, 'Float32Array');
const u8 = typed<Uint8Array>(Uint8Array, 'Uint8Array');
const u16 = typed<Uint16Array>(Uint16Array, 'Uint16Array');
const u32 = typed<Uint32Array>(Uint32Array, 'Uint32Array');
const phase = z.enum(['head', 'fine_tune']);
const split = z.enum(['labelled', 'test']);
const id = z.number().int().nonnegative();
const count = z.number().int().nonnegative();
const finite = z.number().finite();
const str = (max = 1024) => z.string().max(max);

/** 'liveness': a worker's heartbeat thread, attached to its worker (see AttachSchema). */
/** 'shard': a shard of the sharded summation service (coordinator side); 'sender': a worker at a shard. */
export const ClientRoleSchema = z.enum(['worker', 'observer', 'liveness', 'shard', 'sender']);
export type ClientRole = z.infer<typeof ClientRoleSchema>;

// ---- handshake -------------------------------------------------------------------------------
/** client -> coordinator: first frame, with the client's own random nonce (the coordinator signs it in `accepted`). */
export const HelloSchema = z.object({ v, type: z.literal('hello'), role: ClientRoleSchema, name: str(256).optional(), nonce: u8 }).strict();
/** coordinator -> client: random nonce to sign. */
export const ChallengeSchema = z.object({ v, type: z.literal('challenge'), nonce: u8 }).strict();
/** client -> coordinator: HMAC-SHA256(secret, client|role|nonce|client nonce) (see auth.ts). */
export const AuthSchema = z.object({ v, type: z.literal('auth'), mac: u8 }).strict();
/**
 * coordinator -> client: authentication succeeded; workers get the run config to build their replica. `proof` is
 * HMAC-SHA256(secret, coordinator|role|nonce|client nonce): the client trusts nothing in it without a valid one.
 * `livenessKey` (workers): the key its liveness connection presents in `attach`.
 */
export const AcceptedSchema = z
  .object({
    v,
    type: z.literal('accepted'),
    role: ClientRoleSchema,
    workerId: str(64).optional(),
    config: RunConfigSchema.optional(),
    proof: u8.optional(),
    livenessKey: u8.optional(),
  })
  .strict();
/** liveness connection -> coordinator, once authenticated: whose heartbeats follow (the worker id and its key). */
export const AttachSchema = z.object({ v, type: z.literal('attach'), workerId: str(64), key: u8 }).strict();
/** worker -> coordinator: what the worker is and what it loaded. */
export const JoinSchema = z
  .object({
    v,
    type: z.literal('join'),
    backend: str(64),
    device: str(256),
    batchCapacity: z.number().int().positive(),
    /** An agent (`dptrain worker --nproc-per-node`): how many local workers stand behind it (a plain worker: absent, i.e. 1). */
    localWorkers: z.number().int().positive().max(4096).optional(),
    host: str(256),
    baseHash: str(256),
    datasetHash: str(256),
    /** tensorflow-gpu workers: the GPU and tfjs-node-gpu 4.22's verdict on it (e.g. a longer first step under 'ptx-jit'). */
    gpu: z
      .object({ name: str(256), computeCapability: str(16).nullable(), tfjsNodeGpu: z.enum(['native', 'ptx-jit', 'unsupported']).nullable() })
      .strict()
      .optional(),
    /** Precision the worker set its backend to for this run's config; why not, when it could not. */
    precision: z.enum(['fp32', 'bf16']).optional(),
    precisionError: str(1024).optional(),
  })
  .strict();
/** coordinator -> worker: joined; the current step, phase and trainable weights (null before the first phase). */
export const WelcomeSchema = z
  .object({ v, type: z.literal('welcome'), workerId: str(64), step: count, phase: phase.nullable(), weights: f32.nullable() })
  .strict();

// ---- training --------------------------------------------------------------------------------
/** coordinator -> worker: switch the trainable set; set these weights if given; return yours if asked. */
export const PhaseSchema = z.object({ v, type: z.literal('phase'), id, phase, weights: f32.nullable(), wantWeights: z.boolean() }).strict();
/** worker -> coordinator: phase switched. */
export const WeightSpecWireSchema = z.object({ name: str(512), shape: z.array(count).max(8), size: count }).strict();
export const PhaseReadySchema = z
  .object({ v, type: z.literal('phase_ready'), id, spec: z.array(WeightSpecWireSchema).max(10_000), weights: f32.nullable() })
  .strict();
/** coordinator -> worker: compute gradients on these samples of the labelled split. */
/**
 * `microBatch`: the micro-batch of the averaging tree the coordinator cut the step with (the slice starts on one of
 * its boundaries); the worker computes its slice's mean along the same tree. `precision` overrides the run config's
 * gradient precision on the wire for this reply. `sharded`: send the gradient's ranges to the shards of the last
 * `shard_map`, and only the figures here. `weightsVersion`: compute with the weights of this version, which the
 * shards are sending (wait for them). `bucketFloats`: send the gradient in `grad_bucket` frames of this many floats
 * (core's bucketRanges), in order, then the reply with an empty gradient.
 */
export const StepSchema = z
  .object({
    v,
    type: z.literal('step'),
    id,
    phase,
    epoch: count,
    step: count,
    indices: u32,
    microBatch: count,
    precision: GradientPrecisionSchema.optional(),
    sharded: z.boolean().optional(),
    weightsVersion: count.optional(),
    bucketFloats: z.number().int().positive().optional(),
  })
  .strict();
/**
 * worker -> coordinator: one bucket of the gradient of step request `id` (elements [offset, offset + length) of
 * `total`, in the step's wire precision), sent before the `gradients` reply; the buckets of a request come in order.
 */
export const GradBucketSchema = z
  .object({ v, type: z.literal('grad_bucket'), id, offset: count, total: count, dtype: GradientPrecisionSchema, gradients: z.union([f32, u16]) })
  .strict();
/** worker -> coordinator: mean gradient over the slice (fp32, or fp16 / bf16 bit patterns). */
export const GradientsSchema = z
  .object({
    v,
    type: z.literal('gradients'),
    id,
    dtype: GradientPrecisionSchema,
    gradients: z.union([f32, u16]),
    loss: finite,
    count,
    correct: count,
    computeMs: z.number().nonnegative().finite(),
    /** Sharded steps: the L2 norm of the whole gradient (the ranges went to the shards; `gradients` is empty). */
    norm: z.number().nonnegative().optional(),
    /** An agent: how its part was shared among its local workers (their local ids, samples, compute time). */
    local: z
      .array(z.object({ id: z.string().min(1).max(64), samples: count, computeMs: z.number().nonnegative().finite() }).strict())
      .max(1024)
      .optional(),
  })
  .strict();
/**
 * coordinator -> worker: hold these trainable weights, the coordinator's weights `version` (it goes up with each
 * update and phase, not with the training step). `ack` asks for a weights_ack.
 */
export const WeightsSchema = z.object({ v, type: z.literal('weights'), version: count, weights: f32, ack: z.boolean() }).strict();
export const WeightsAckSchema = z.object({ v, type: z.literal('weights_ack'), version: count }).strict();
/**
 * coordinator -> worker: one bucket of the trainable weights of `version` (elements [offset, offset + weights.length)
 * of `total`), sent as soon as the optimizer has updated that range; the buckets of a version come in order and
 * the worker holds the new weights once the last one is in (then acks if `ack`).
 */
export const WeightsBucketSchema = z
  .object({ v, type: z.literal('weights_bucket'), version: count, offset: count, total: count, weights: f32, ack: z.boolean() })
  .strict();
/** coordinator -> worker: class probabilities for these samples. */
export const PredictSchema = z.object({ v, type: z.literal('predict'), id, split, indices: u32 }).strict();
/** worker -> coordinator: probabilities, count x classes, row-major. */
export const PredictionsSchema = z.object({ v, type: z.literal('predictions'), id, count, probs: f32, computeMs: z.number().nonnegative().finite() }).strict();

// ---- liveness, observers, errors ------------------------------------------------------------------
export const HeartbeatSchema = z.object({ v, type: z.literal('heartbeat'), time: finite }).strict();
/** A RunEvent, validated loosely (the dashboard reducer ignores what it does not know). */
export const RunEventWireSchema = z.object({ type: str(64), time: finite }).passthrough();
/** coordinator -> observer: events so far (on connect), then each new event. */
export const EventsSchema = z.object({ v, type: z.literal('events'), events: z.array(RunEventWireSchema) }).strict();
export const ErrorSchema = z.object({ v, type: z.literal('error'), code: str(64), message: str(4096) }).strict();
export const ByeSchema = z.object({ v, type: z.literal('bye'), reason: str(1024) }).strict();

// ---- the sharded summation service (see docs/cluster.md, "Shards") -----------------------------
const range = z.object({ start: count, end: count }).strict();
const slots = z.record(z.string().max(64), f32);
/** shard -> coordinator, once accepted: where senders reach it. */
export const ShardReadySchema = z.object({ v, type: z.literal('shard_ready'), url: str(1024) }).strict();
/** coordinator -> worker: the shards of this run (the only ones whose weights it accepts), and each one's range. */
export const ShardMapSchema = z
  .object({
    v,
    type: z.literal('shard_map'),
    generation: count,
    size: count,
    shards: z.array(z.object({ id: str(64), url: str(1024), start: count, end: count }).strict()).max(4096),
  })
  .strict();
/** coordinator -> agent (`--shards auto`): start one shard beside you, unless yours is still up; it joins on its own. */
export const ShardHostSchema = z.object({ v, type: z.literal('shard_host') }).strict();
/** coordinator -> shard: own this range from now on, with these weights and this optimizer state. */
export const ShardSeedSchema = z
  .object({
    v,
    type: z.literal('shard_seed'),
    id,
    generation: count,
    range,
    size: count,
    weights: f32,
    optimizer: z.object({ kind: z.enum(['adam', 'sgd']), learningRate: finite, iterations: count, slots }).strict(),
  })
  .strict();
export const ShardSeededSchema = z.object({ v, type: z.literal('shard_seeded'), id }).strict();
/** coordinator -> shard: merge these parts' ranges (which the senders sent) along the tree of a batch of n. */
export const ShardReduceSchema = z
  .object({
    v,
    type: z.literal('shard_reduce'),
    id,
    n: count,
    microBatch: count,
    parts: z.array(z.object({ sender: str(64), request: id, start: count, end: count }).strict()).max(65_536),
  })
  .strict();
/** shard -> coordinator: merged; per-bucket sums of squares of the merged range; parts refused (bad values). */
export const ShardReducedSchema = z
  .object({ v, type: z.literal('shard_reduced'), id, sums: z.array(z.number().nonnegative()).max(1 << 20), refused: z.array(str(1024)).max(65_536) })
  .strict();
/** coordinator -> shard: scale the merged range by `scale` (global-norm clipping), apply the optimizer step, send the weights. */
export const ShardUpdateSchema = z
  .object({ v, type: z.literal('shard_update'), id, version: count, learningRate: finite, iterations: count, scale: finite })
  .strict();
/** shard -> coordinator: the range's new weights, and the senders they were sent to. */
export const ShardUpdatedSchema = z.object({ v, type: z.literal('shard_updated'), id, weights: f32, sentTo: z.array(str(64)).max(65_536) }).strict();
/** coordinator -> shard: the range's optimizer state (for a checkpoint). */
export const ShardStateSchema = z.object({ v, type: z.literal('shard_state'), id }).strict();
export const ShardStateReplySchema = z
  .object({ v, type: z.literal('shard_state_reply'), id, kind: z.enum(['adam', 'sgd']), learningRate: finite, iterations: count, slots })
  .strict();
/** sender -> shard: the shard's range of the gradient of the sender's step request `request`. */
export const GradRangeSchema = z
  .object({ v, type: z.literal('grad_range'), request: id, offset: count, dtype: GradientPrecisionSchema, gradients: z.union([f32, u16]) })
  .strict();
/** shard -> sender: the shard's range of the trainable weights of `version`. */
export const WeightsRangeSchema = z.object({ v, type: z.literal('weights_range'), version: count, offset: count, weights: f32 }).strict();

export const MessageSchema = z.discriminatedUnion('type', [
  HelloSchema,
  ChallengeSchema,
  AuthSchema,
  AcceptedSchema,
  AttachSchema,
  JoinSchema,
  WelcomeSchema,
  PhaseSchema,
  PhaseReadySchema,
  StepSchema,
  GradientsSchema,
  GradBucketSchema,
  WeightsSchema,
  WeightsAckSchema,
  WeightsBucketSchema,
  PredictSchema,
  PredictionsSchema,
  HeartbeatSchema,
  EventsSchema,
  ErrorSchema,
  ByeSchema,
  ShardReadySchema,
  ShardMapSchema,
  ShardHostSchema,
  ShardSeedSchema,
  ShardSeededSchema,
  ShardReduceSchema,
  ShardReducedSchema,
  ShardUpdateSchema,
  ShardUpdatedSchema,
  ShardStateSchema,
  ShardStateReplySchema,
  GradRangeSchema,
  WeightsRangeSchema,
]);

export type Message = z.infer<typeof MessageSchema>;
export type MessageType = Message['type'];
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;
/** A message without its version field (the codec stamps it). */
export type Outgoing<T extends MessageType = MessageType> = T extends MessageType ? Omit<MessageOf<T>, 'v'> : never;
