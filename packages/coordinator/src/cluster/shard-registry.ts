import { DptrainError, type Message } from '@dptrain/core';
import { WorkerTaskError, type Peer } from './peer.js';

/** A shard as the coordinator knows it: its connection and where senders reach it. */
export interface ShardPeer {
  peer: Peer;
  /** The URL the shard serves senders on (from its `shard_ready`). */
  url: string;
}

/**
 * The shards connected to the coordinator (role `shard`, authenticated with the run's token), in join order.
 * ClusterServer hands them here; the sharded executor lays the trainable vector out over the ready ones.
 */
export class ShardRegistry {
  private readonly all = new Map<Peer, string | undefined>();
  private readonly readyWaiters = new Set<() => void>();
  private readonly lostListeners = new Set<(shard: Peer, reason: string) => void>();
  private generation = 0;

  /** A new layout generation, unique on this server (workers follow a shard map only when its generation is new). */
  nextGeneration(): number {
    return ++this.generation;
  }

  /** Ready shards (they said where senders reach them), in join order. */
  get ready(): ShardPeer[] {
    return [...this.all.entries()]
      .filter(([p, url]) => url !== undefined && !p.closed)
      .sort(([a], [b]) => a.seq - b.seq)
      .map(([peer, url]) => ({ peer, url: url! }));
  }

  add(peer: Peer): void {
    this.all.set(peer, undefined);
  }

  /** A message from a shard: its `shard_ready`, or a reply to one of the executor's requests. */
  onMessage(peer: Peer, msg: Message): void {
    switch (msg.type) {
      case 'shard_ready':
        this.all.set(peer, msg.url);
        for (const w of [...this.readyWaiters]) w();
        return;
      case 'shard_seeded':
      case 'shard_reduced':
      case 'shard_updated':
      case 'shard_state_reply':
        if (!peer.settle(msg.type, String(msg.id), msg)) throw new DptrainError('E_PROTOCOL_SCHEMA', `shard ${peer.id}: unexpected '${msg.type}' ${msg.id}`);
        return;
      case 'error':
        peer.failPending(new WorkerTaskError(peer.id, msg.code, msg.message));
        return;
      default:
        throw new DptrainError('E_PROTOCOL_SCHEMA', `shard ${peer.id}: unexpected '${msg.type}' message`);
    }
  }

  /** Called by the server when a shard's connection is gone. */
  lost(peer: Peer, reason: string): void {
    if (!this.all.delete(peer)) return;
    for (const l of this.lostListeners) l(peer, reason);
  }

  onLost(listener: (shard: Peer, reason: string) => void): () => void {
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  /** Resolves once a shard becomes ready, or after `timeoutMs`. */
  waitForReady(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        this.readyWaiters.delete(done);
        resolve();
      };
      const t = setTimeout(done, timeoutMs);
      this.readyWaiters.add(done);
    });
  }
}
