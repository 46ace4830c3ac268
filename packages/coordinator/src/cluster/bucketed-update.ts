import { bucketRanges, clipScale, encodeMessage, l2Norm, scaleRange, type TrainingUpdate } from '@dptrain/core';
import { DeadlineError, type Peer } from './peer.js';
import type { RunSync } from './run-sync.js';
import type { ClusterServer } from './server.js';

/** How the coordinator applies a step's update and sends the new weights, bucket by bucket. */
export interface BucketedUpdateOptions {
  /** Floats per bucket (see core's bucketRanges). Default: core's DEFAULT_BUCKET_FLOATS (the executor's `bucketFloats`). */
  bucketFloats: number;
  /** Wait until every peer acknowledged the new weights (a weights_ack after its last bucket). Default false (`ackWeights`). */
  ack: boolean;
  /** Deadline of an acknowledgement (ms). Default: the first-request deadline. */
  ackDeadlineMs: number;
}

/**
 * The update of one step on `server`, pipelined with the broadcast (ClusterExecutor.trainStep): the weights get a
 * new version in `run` and every worker of the phase is sent them bucket by bucket (updateAndBroadcast). While the
 * buckets are updated (the event loop runs between them) the run state holds no weights, so a joiner is welcomed
 * with the phase only and synced with the finished weights before its first task.
 */
export async function pipelinedUpdate(
  server: ClusterServer,
  run: RunSync,
  gradients: Float32Array,
  update: TrainingUpdate,
  options: BucketedUpdateOptions,
): Promise<void> {
  const peers = server.workers.filter((p) => run.inPhase(p)); // the others are synced before their next task
  const s = run.state;
  s.version++;
  s.weights = null;
  for (const p of peers) run.synced(p);
  try {
    await updateAndBroadcast(gradients, update, peers, s.version, options, (p, err) => server.drop(p, `deadline: ${err.message}`));
  } finally {
    s.weights = update.weights;
  }
}

/**
 * The optimizer update of one step, pipelined with the broadcast: the gradient's clip scale comes from its whole
 * (bucketed) norm, then for each bucket in order the range is clipped, updated (`stepRange`) and its new weights
 * sent at once to every peer as a `weights_bucket` frame, one encoded frame for all; between buckets the event loop
 * runs, so the sockets drain bucket k while the optimizer works on bucket k + 1. Same bits as clipByGlobalNorm +
 * optimizer.step + one `weights` frame. Peers late for an acknowledgement are handed to `onLate`.
 */
export async function updateAndBroadcast(
  gradients: Float32Array,
  update: TrainingUpdate,
  peers: readonly Peer[],
  version: number,
  options: BucketedUpdateOptions,
  onLate: (peer: Peer, err: DeadlineError) => void,
): Promise<void> {
  const scale = update.clipNorm > 0 ? clipScale(l2Norm(gradients), update.clipNorm) : 1;
  const total = update.weights.length;
  const ranges = bucketRanges(total, options.bucketFloats);
  update.optimizer.beginStep();
  const acks: Promise<void>[] = [];
  for (const [k, r] of ranges.entries()) {
    scaleRange(gradients, scale, r.start, r.end);
    const weights = update.weights.subarray(r.start, r.end);
    update.optimizer.stepRange(weights, gradients.subarray(r.start, r.end), r.start);
    const last = k === ranges.length - 1;
    const ack = options.ack && last;
    // one copy into the frame (the next step's optimizer writes these weights while slow sockets may still hold it)
    const frame = encodeMessage({ type: 'weights_bucket', version, offset: r.start, total, weights, ack });
    acks.push(sendFrame(peers, frame, ack ? { version, deadlineMs: options.ackDeadlineMs } : undefined, onLate));
    if (!last) await new Promise<void>((resolve) => setImmediate(resolve)); // let the sockets write
  }
  await Promise.all(acks);
}

/**
 * Sends `frame` (one encoded message, or a received frame's fragments) to every open peer; with `ack`, resolves once
 * each has acknowledged weights `ack.version`, handing those past `ack.deadlineMs` to `onLate`.
 */
export async function sendFrame(
  peers: readonly Peer[],
  frame: Buffer | Buffer[],
  ack: { version: number; deadlineMs: number } | undefined,
  onLate: (peer: Peer, err: DeadlineError) => void,
): Promise<void> {
  const open = peers.filter((p) => !p.closed);
  if (!ack) {
    for (const p of open) p.send(frame);
    return;
  }
  await Promise.all(
    open.map((p) =>
      p.request('weights_ack', frame, String(ack.version), ack.deadlineMs).then(
        () => undefined,
        (err: unknown) => {
          if (err instanceof DeadlineError) onLate(p, err);
        },
      ),
    ),
  );
}
