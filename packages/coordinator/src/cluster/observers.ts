import { encodeMessage, type MessageOf, type RunEvent } from '@dptrain/core';
import { EventHistory, type EventHistoryOptions } from './event-history.js';
import type { Peer } from './peer.js';

type WireEvents = MessageOf<'events'>['events'];

/**
 * The observers (dashboards) of a run: every run event is kept in a bounded history and fanned out to each
 * connected observer as it happens; a new observer first gets the history.
 */
export class ObserverHub {
  private readonly history: EventHistory;
  private readonly peers = new Set<Peer>();

  constructor(opts: EventHistoryOptions = {}) {
    this.history = new EventHistory(opts);
  }

  /** Observers connected now. */
  get size(): number {
    return this.peers.size;
  }

  /** What an observer receives on connect: the run's events and the rejections, each history bounded on its own. */
  snapshot(): readonly RunEvent[] {
    return this.history.snapshot();
  }

  /** An authenticated observer: accepted (with the coordinator's `proof`), sent the history, then every event. */
  add(peer: Peer, proof: Uint8Array): void {
    peer.state = 'observing';
    peer.send({ type: 'accepted', role: 'observer', proof });
    peer.send({ type: 'events', events: this.history.snapshot() as unknown as WireEvents });
    this.peers.add(peer);
  }

  remove(peer: Peer): void {
    this.peers.delete(peer);
  }

  /** Keeps `e` in the history and sends it to every observer. */
  publish(e: RunEvent): void {
    this.history.add(e);
    if (this.peers.size === 0) return;
    const frame = encodeMessage({ type: 'events', events: [e as unknown as WireEvents[number]] });
    for (const o of this.peers) o.send(frame);
  }
}
