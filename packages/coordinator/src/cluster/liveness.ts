/**
 * Liveness connections: each worker runs its heartbeats on a thread of its own, over a second authenticated
 * connection (role 'liveness') that attaches to the worker with the key the coordinator gave the worker in its
 * `accepted`. A heartbeat there counts as the worker being seen, so a worker whose main thread is busy in one long
 * synchronous kernel is not declared lost; its thread stops beating when the main thread stops making progress
 * (see packages/worker/src/liveness.ts), so a wedged process is still lost after lostAfterMs.
 */
import { createNonce, DptrainError, type MessageOf } from '@dptrain/core';
import type { Peer } from './peer.js';

export class LivenessLinks {
  /** Key issued to each worker id, until the worker is dropped. */
  private readonly keys = new Map<string, Uint8Array>();
  /** Worker id → its attached liveness connection. */
  private readonly links = new Map<string, Peer>();
  /** Liveness connection → the worker it beats for. */
  private readonly owners = new Map<Peer, Peer>();

  /** A fresh key for a worker just accepted (sent in its `accepted`). */
  issue(workerId: string): Uint8Array {
    const key = createNonce();
    this.keys.set(workerId, key);
    return key;
  }

  /** A liveness connection authenticated: it may now attach. `proof`: the coordinator's half of the mutual auth. */
  accept(peer: Peer, proof: Uint8Array): void {
    peer.state = 'liveness';
    peer.send({ type: 'accepted', role: 'liveness', proof });
  }

  /** Ties `peer` to the worker it names; E_AUTH when the key is not that worker's. */
  attach(peer: Peer, msg: MessageOf<'attach'>, worker: Peer | undefined): void {
    const key = this.keys.get(msg.workerId);
    if (!key || !worker || worker.closed || !sameBytes(key, msg.key)) {
      throw new DptrainError('E_AUTH', `liveness connection ${peer.id}: no worker ${msg.workerId} with that key`);
    }
    const old = this.links.get(msg.workerId);
    if (old && old !== peer) this.owners.delete(old);
    this.links.set(msg.workerId, peer);
    this.owners.set(peer, worker);
  }

  /** A heartbeat on a liveness connection: its worker counts as seen now. Returns that worker, if attached. */
  beat(peer: Peer, now: number): Peer | undefined {
    const worker = this.owners.get(peer);
    if (worker && !worker.closed) worker.lastSeen = now;
    return worker;
  }

  /** Forgets a dropped peer; returns the liveness connection to close when it was a worker with one. */
  forget(peer: Peer): Peer | undefined {
    if (this.owners.delete(peer)) return undefined;
    this.keys.delete(peer.id);
    const link = this.links.get(peer.id);
    this.links.delete(peer.id);
    if (link) this.owners.delete(link);
    return link;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
