/**
 * Errors with stable codes, in the style of `ws`: every error dptrain throws on purpose is a
 * `DptrainError` whose `code` never changes between releases, so callers and tests can match on it.
 */
export type DptrainErrorCode =
  // CLI (packages/cli/src/report-error.ts)
  | 'E_USAGE' // the command line itself: unknown command or option, missing or bad argument
  | 'E_IO' // an operating-system call failed (file, folder, socket): the message names the path or address
  | 'E_INTERNAL' // an unexpected error (a bug): reported with where it happened and how to see its stack
  // data
  | 'E_DATA_INVALID' // validation pass found culprits (see `details`)
  | 'E_DATA_CSV' // malformed CSV
  | 'E_DATA_IMAGE' // an image could not be decoded
  | 'E_DATA_LAYOUT' // data directory is not a known layout
  // backends
  | 'E_BACKEND_UNAVAILABLE' // a backend asked for by name cannot load
  | 'E_BACKEND_NO_GPU' // tfjs-node-gpu loaded but no GPU is usable
  | 'E_BACKEND_GPU_UNSUPPORTED' // a visible GPU's compute capability cannot run tfjs-node-gpu 4.22
  | 'E_NO_BACKEND' // none of the backends could load
  | 'E_PRECISION' // --precision bf16 where it cannot run (not the native backend, no AVX512-BF16/AMX), or a worker that cannot run the run's precision
  // models
  | 'E_WEIGHTS' // weight file missing, unreadable or of the wrong shape
  | 'E_MODEL' // model config problem (unknown layer, bad cut, ...)
  // protocol / cluster
  | 'E_PROTOCOL_DECODE' // frame is not valid msgpack
  | 'E_PROTOCOL_VERSION' // wrong protocol version
  | 'E_PROTOCOL_SCHEMA' // message does not match its schema
  | 'E_PROTOCOL_OVERSIZE' // frame larger than maxPayload
  | 'E_AUTH' // bad token / failed challenge
  | 'E_AUTH_COORDINATOR' // the coordinator could not prove it knows the token (a rogue or misconfigured coordinator)
  | 'E_ORIGIN' // a WebSocket upgrade from a browser page (Origin header not allowed)
  | 'E_OVERLOAD' // too many unauthenticated connections (in total or from one address)
  | 'E_GRADIENT_SHAPE' // gradient of the wrong length
  | 'E_GRADIENT_NONFINITE' // NaN/Inf in a gradient
  | 'E_BASE_HASH' // worker's frozen base differs from the coordinator's
  | 'E_DATASET_HASH' // worker's data differs from the coordinator's
  | 'E_TIMEOUT' // no answer in time: authentication, join, or a worker's request past its deadline
  | 'E_STOPPED' // the run was stopped (SIGINT, SIGTERM, SIGHUP) while it waited for workers
  | 'E_NO_WORKERS' // every local worker died and the restart budget is used up
  | 'E_SHARD_LOST' // a shard of the sharded summation service was lost mid-step (the run rolls back to its last checkpoint)
  | 'E_NO_SHARDS' // --shards asked for shards and none is connected (or the rollback budget is used up)
  | 'E_WORKER' // a worker failed a task for an unexpected reason (reported as internal: the worker's message says where)
  | 'E_WORKER_LOST' // a request went unanswered because its worker was lost (its share is redone by the others)
  | 'E_BATCH_CAPACITY' // no worker's --batch-capacity holds one micro-batch
  | 'E_CHECKPOINT'
  | 'E_CONFIG'
  | 'E_GRADIENT_NORM' // a gradient's norm is beyond the sanity bound (--max-grad-norm, --max-grad-norm-ratio)
  | 'E_OPTIMIZER_NONFINITE'; // an optimizer update would make its state or the weights non-finite

export class DptrainError extends Error {
  /** Stable machine-readable code. */
  readonly code: DptrainErrorCode;
  /** Optional structured details (e.g. the list of culprits of a data validation). */
  readonly details: unknown;
  constructor(code: DptrainErrorCode, message: string, details?: unknown, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DptrainError';
    this.code = code;
    this.details = details;
  }
}

export function isDptrainError(e: unknown, code?: DptrainErrorCode): e is DptrainError {
  return e instanceof DptrainError && (code === undefined || e.code === code);
}
