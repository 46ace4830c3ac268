import type { DptrainErrorCode } from '../errors.js';

/**
 * WebSocket close codes dptrain closes its connections with (RFC 6455 section 7.4, and 4000 of its own): the
 * coordinator, an agent's local server, a shard, a worker and the dashboard client all close through this table.
 */
export const CLOSE_CODES = {
  /** The connection is done with: a dropped worker, a closed liveness link, a worker or shard that stops, a bye. */
  normal: 1000,
  /** The coordinator is shutting down. */
  goingAway: 1001,
  /** A refused peer: bad frame, failed authentication, wrong hashes (workers treat it as a refusal before auth). */
  policyViolation: 1008,
  /** An unexpected condition on the coordinator. */
  internalError: 1011,
  /** Too many connections now: try again later. */
  tryAgainLater: 1013,
  /** The peer was silent past the lost-after limit. */
  silent: 4000,
} as const;

export type CloseCode = (typeof CLOSE_CODES)[keyof typeof CLOSE_CODES];

/**
 * The close code of a connection refused for each error code: the one table every rejection goes through
 * (`ClusterServer.reject`, a shard's sender server). A new error code must say here how its connection closes.
 */
const REFUSAL_CLOSE_CODES: Record<DptrainErrorCode, CloseCode> = {
  E_USAGE: CLOSE_CODES.policyViolation,
  E_IO: CLOSE_CODES.internalError,
  E_INTERNAL: CLOSE_CODES.internalError,
  E_DATA_INVALID: CLOSE_CODES.policyViolation,
  E_DATA_CSV: CLOSE_CODES.policyViolation,
  E_DATA_IMAGE: CLOSE_CODES.policyViolation,
  E_DATA_LAYOUT: CLOSE_CODES.policyViolation,
  E_BACKEND_UNAVAILABLE: CLOSE_CODES.policyViolation,
  E_BACKEND_NO_GPU: CLOSE_CODES.policyViolation,
  E_BACKEND_GPU_UNSUPPORTED: CLOSE_CODES.policyViolation,
  E_NO_BACKEND: CLOSE_CODES.policyViolation,
  E_PRECISION: CLOSE_CODES.policyViolation,
  E_WEIGHTS: CLOSE_CODES.policyViolation,
  E_MODEL: CLOSE_CODES.policyViolation,
  E_PROTOCOL_DECODE: CLOSE_CODES.policyViolation,
  E_PROTOCOL_VERSION: CLOSE_CODES.policyViolation,
  E_PROTOCOL_SCHEMA: CLOSE_CODES.policyViolation,
  E_PROTOCOL_OVERSIZE: CLOSE_CODES.policyViolation,
  E_AUTH: CLOSE_CODES.policyViolation,
  E_AUTH_COORDINATOR: CLOSE_CODES.policyViolation,
  E_ORIGIN: CLOSE_CODES.policyViolation,
  E_OVERLOAD: CLOSE_CODES.tryAgainLater,
  E_GRADIENT_SHAPE: CLOSE_CODES.policyViolation,
  E_GRADIENT_NONFINITE: CLOSE_CODES.policyViolation,
  E_BASE_HASH: CLOSE_CODES.policyViolation,
  E_DATASET_HASH: CLOSE_CODES.policyViolation,
  E_TIMEOUT: CLOSE_CODES.policyViolation,
  E_STOPPED: CLOSE_CODES.goingAway,
  E_NO_WORKERS: CLOSE_CODES.goingAway,
  E_SHARD_LOST: CLOSE_CODES.goingAway,
  E_NO_SHARDS: CLOSE_CODES.goingAway,
  E_BATCH_CAPACITY: CLOSE_CODES.policyViolation,
  E_CHECKPOINT: CLOSE_CODES.internalError,
  E_CONFIG: CLOSE_CODES.policyViolation,
  E_GRADIENT_NORM: CLOSE_CODES.policyViolation,
  E_OPTIMIZER_NONFINITE: CLOSE_CODES.policyViolation,
  E_WORKER: CLOSE_CODES.policyViolation,
  E_WORKER_LOST: CLOSE_CODES.normal,
};

/** The close code of a connection refused with error code `code` (an unknown one: policy violation). */
export function closeCodeFor(code: string): CloseCode {
  return REFUSAL_CLOSE_CODES[code as DptrainErrorCode] ?? CLOSE_CODES.policyViolation;
}
