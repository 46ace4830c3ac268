import type { RunEvent } from '@dptrain/core';

/**
 * Drops events already seen when a reconnected observer receives the coordinator's history again:
 * events come in time order, so anything older than the newest seen, or among the ones seen at that same
 * time, is a repeat. Call `reconnected()` when a new connection starts replaying.
 */
export class ReplayFilter {
  private lastTime = -Infinity;
  /** Events seen with time === lastTime. */
  private atLast = 0;
  /** Events with time === lastTime skipped on the current connection. */
  private skippedAtLast = 0;
  private replaying = false;

  reconnected(): void {
    this.replaying = true;
    this.skippedAtLast = 0;
  }

  /** True when the event is new (pass it on), false for a repeat. */
  accept(e: RunEvent): boolean {
    if (this.replaying) {
      if (e.time < this.lastTime) return false;
      if (e.time === this.lastTime && this.skippedAtLast < this.atLast) {
        this.skippedAtLast++;
        return false;
      }
      this.replaying = false;
    }
    if (e.time === this.lastTime) this.atLast++;
    else if (e.time > this.lastTime) {
      this.lastTime = e.time;
      this.atLast = 1;
    }
    return true;
  }
}
