import type { MessageOf } from '@dptrain/core';
import { WeightsAssembly } from '@dptrain/worker';
import { sendFrame } from './bucketed-update.js';
import type { Peer } from './peer.js';
import type { RunSync } from './run-sync.js';
import type { ClusterServer } from './server.js';

/**
 * An agent's relay of the pipelined weights: each `weights_bucket` frame from the coordinator goes on at once, as it
 * was received (no re-encode), to the local workers of the phase that had the bucket at offset 0 of its version, so
 * the local links overlap the upstream one; the last bucket's ack waits for theirs. The relay also puts the buckets
 * together, and the local run state holds the whole new weights (for joiners and workers that missed them) once the
 * last one is in; until then it holds none, so a local joiner is synced with the finished weights before its next task.
 */
export class BucketRelay {
  private readonly assembly = new WeightsAssembly();
  private version = -1;
  private peers: Peer[] = [];

  constructor(
    private readonly server: ClusterServer,
    /** The agent's local run state (its executor's). */
    private readonly run: RunSync,
    /** Deadline of a local worker's ack of the last bucket, in ms (a late worker is dropped). */
    private readonly ackDeadlineMs: () => number,
  ) {}

  async forward(msg: MessageOf<'weights_bucket'>, frame: Buffer[]): Promise<void> {
    const whole = this.assembly.add(msg); // checks the order (a gap or a repeat is refused before anything is sent)
    const s = this.run.state;
    if (msg.offset === 0) {
      this.version = msg.version;
      this.peers = this.server.workers.filter((p) => this.run.inPhase(p));
      s.version = msg.version; // the coordinator's numbering
      s.weights = null;
      for (const p of this.peers) this.run.synced(p);
    }
    const ack = msg.ack ? { version: this.version, deadlineMs: this.ackDeadlineMs() } : undefined;
    await sendFrame(this.peers, frame, ack, (p, err) => this.server.drop(p, `deadline: ${err.message}`));
    if (whole) s.weights = whole;
  }
}
