import type { RunEvent } from '@dptrain/core';

/** How much of a run's events the coordinator keeps for observers that connect later. */
export interface EventHistoryOptions {
  /** Run events kept (steps, epochs, joins, losses, logs...; oldest dropped first). Default 20000. */
  maxRunEvents?: number;
  /** Rejection events kept, in a history of their own so that a flood cannot push the run's out. Default 500. */
  maxRejections?: number;
}

export const DEFAULT_EVENT_HISTORY_OPTIONS: Required<EventHistoryOptions> = { maxRunEvents: 20_000, maxRejections: 500 };

/** A bounded list that drops its oldest entries in chunks (no O(n) shift per push). */
class Ring<T> {
  private items: T[] = [];
  constructor(private readonly max: number) {}
  push(x: T): void {
    this.items.push(x);
    if (this.items.length > this.max + Math.max(16, this.max >> 3)) this.items = this.items.slice(-this.max);
  }
  get list(): T[] {
    return this.items.length > this.max ? this.items.slice(-this.max) : this.items;
  }
}

/**
 * The events sent to an observer when it connects: the run's own events and the rejections, each in its own
 * bounded history, merged back in the order they happened. Heartbeats are not kept.
 */
export class EventHistory {
  private seq = 0;
  private readonly run: Ring<[number, RunEvent]>;
  private readonly rejections: Ring<[number, RunEvent]>;

  constructor(options: EventHistoryOptions = {}) {
    this.run = new Ring(options.maxRunEvents ?? DEFAULT_EVENT_HISTORY_OPTIONS.maxRunEvents);
    this.rejections = new Ring(options.maxRejections ?? DEFAULT_EVENT_HISTORY_OPTIONS.maxRejections);
  }

  add(e: RunEvent): void {
    if (e.type === 'worker_heartbeat') return;
    (e.type === 'frame_rejected' ? this.rejections : this.run).push([this.seq++, e]);
  }

  /** Both histories, oldest first. */
  snapshot(): RunEvent[] {
    const a = this.run.list;
    const b = this.rejections.list;
    const out: RunEvent[] = [];
    let i = 0;
    let j = 0;
    while (i < a.length || j < b.length) {
      if (j >= b.length || (i < a.length && a[i]![0] < b[j]![0])) out.push(a[i++]![1]);
      else out.push(b[j++]![1]);
    }
    return out;
  }
}
