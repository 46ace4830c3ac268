/**
 * Liveness connections: each worker runs its heartbeats on a thread of its own, over a second authenticated
 * connection (role 'liveness') that attaches to the worker with the key the coordinator gave the worker in its
 * `accepted`. A heartbeat there counts as the worker being seen, so a worker whose main thread is busy in one long
 * synchronous kernel is not declared lost; its thread stops beating when the main thread stops making progress
 * (see packages/worker/src/liveness.ts), so a wedged process is still lost after lostAfterMs.
 */
import { createNonce, DptrainError, encodeMessage, type Clock, type MessageOf } from '@dptrain/core';
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

/** What the liveness monitor needs from the server around it. */
export interface LivenessMonitorContext {
  heartbeatIntervalMs: number;
  lostAfterMs: number;
  clock: Clock;
  /** Every open connection. */
  peers(): Iterable<Peer>;
  /** Closes a silent peer. */
  lost(peer: Peer, reason: string): void;
}

/**
 * Heartbeats and silence: sends a heartbeat to every connection in the handshake or joined each interval, and
 * drops a joined worker or observer silent for `lostAfterMs`. Liveness is checked far more often than heartbeats
 * are sent, so a silent worker is declared lost within lostAfterMs of its last frame, not up to an interval later.
 */
export class LivenessMonitor {
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private checkTimer: NodeJS.Timeout | undefined;
  private lastCheck = 0;

  constructor(private readonly ctx: LivenessMonitorContext) {}

  /** How often liveness is checked: a twentieth of lostAfterMs, at most the heartbeat interval, at least 25 ms. */
  get checkMs(): number {
    return Math.max(25, Math.min(this.ctx.heartbeatIntervalMs, Math.floor(this.ctx.lostAfterMs / 20)));
  }

  start(): void {
    this.heartbeatTimer = setInterval(() => this.sendHeartbeats(), this.ctx.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
    this.checkTimer = setInterval(() => this.check(), this.checkMs);
    this.checkTimer.unref();
  }

  stop(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.checkTimer) clearInterval(this.checkTimer);
  }

  private check(): void {
    const now = this.ctx.clock.now();
    const late = this.lastCheck > 0 && now - this.lastCheck > 2 * this.checkMs + 250;
    this.lastCheck = now;
    // A late check means this process's own event loop was busy: frames that workers sent meanwhile are still
    // unread (timers run before I/O), so their silence is ours. Judge again once the I/O has been read.
    if (late) return;
    // declared lost once silent for lostAfterMs less one check period, so detection never lands past the limit
    const limit = this.ctx.lostAfterMs - this.checkMs;
    for (const p of [...this.ctx.peers()]) {
      if (p.closed) continue;
      // ('join': authenticated and building its replica, which may block its event loop; joinTimeoutMs covers it)
      if ((p.state === 'joined' || p.state === 'observing' || p.state === 'shard') && now - p.lastSeen > limit) {
        this.ctx.lost(p, `silent for ${now - p.lastSeen} ms (limit ${this.ctx.lostAfterMs} ms)`);
      }
    }
  }

  private sendHeartbeats(): void {
    const beat = encodeMessage({ type: 'heartbeat', time: this.ctx.clock.now() });
    for (const p of [...this.ctx.peers()]) {
      if (p.closed) continue;
      if (p.state === 'joined' || p.state === 'observing' || p.state === 'join' || p.state === 'shard') p.send(beat);
    }
  }
}
