import type { Clock, RunEvent } from '@dptrain/core';

/** How rejections are reported (every rejection is still counted in `ClusterServer.rejected`). */
export interface RejectionLogOptions {
  /** Rejections from one address reported one by one in each window; the rest are summed. Default 5. */
  burst?: number;
  /** Length of a window, in ms: at its end, one summary event per code sums what was not reported. Default 10000. */
  windowMs?: number;
  /** Addresses followed at once; past that, the oldest window is summed up early. Default 1024. */
  maxAddresses?: number;
}

export const DEFAULT_REJECTION_LOG_OPTIONS: Required<RejectionLogOptions> = { burst: 5, windowMs: 10_000, maxAddresses: 1024 };

interface Window {
  start: number;
  reported: number;
  /** Rejections not reported one by one, by code: count and the last reason. */
  held: Map<string, { count: number; reason: string }>;
}

/**
 * Rate-limits `frame_rejected` events per remote address, so that a flood of bad frames costs a few log lines, not
 * one each (stdout, run.log.jsonl, observers): the first `burst` rejections of an address in a window are emitted as
 * they happen, the others are summed per code and emitted as one event with `count` when the window ends.
 */
export class RejectionLog {
  private readonly options: Required<RejectionLogOptions>;
  private readonly windows = new Map<string, Window>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly emit: (event: RunEvent) => void,
    private readonly clock: Clock,
    options: RejectionLogOptions = {},
  ) {
    this.options = { ...DEFAULT_REJECTION_LOG_OPTIONS };
    for (const [k, v] of Object.entries(options)) if (v !== undefined) (this.options as Record<string, number>)[k] = v as number;
  }

  /** Starts the timer that closes finished windows. */
  start(): void {
    this.timer ??= setInterval(() => this.flush(), Math.max(50, Math.floor(this.options.windowMs / 4)));
    this.timer.unref();
  }

  /** Stops the timer and emits what is held. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.flush(Infinity);
  }

  record(address: string, code: string, reason: string, workerId?: string): void {
    const now = this.clock.now();
    let w = this.windows.get(address);
    if (w && now - w.start >= this.options.windowMs) {
      this.close(address, w, now);
      w = undefined;
    }
    if (!w) {
      if (this.windows.size >= this.options.maxAddresses) this.closeOldest(now);
      w = { start: now, reported: 0, held: new Map() };
      this.windows.set(address, w);
    }
    if (w.reported < this.options.burst) {
      w.reported++;
      this.emit({ type: 'frame_rejected', time: now, ...(workerId ? { workerId } : {}), code, reason, address });
      return;
    }
    const h = w.held.get(code);
    if (h) {
      h.count++;
      h.reason = reason;
    } else w.held.set(code, { count: 1, reason });
  }

  /** Closes the windows that have ended by `now` (all of them with Infinity). */
  flush(now: number = this.clock.now()): void {
    for (const [address, w] of [...this.windows]) if (now - w.start >= this.options.windowMs) this.close(address, w, Math.min(now, this.clock.now()));
  }

  private closeOldest(now: number): void {
    const first = this.windows.entries().next();
    if (!first.done) this.close(first.value[0], first.value[1], now);
  }

  private close(address: string, w: Window, now: number): void {
    this.windows.delete(address);
    for (const [code, h] of w.held) {
      const secs = Math.round((now - w.start) / 100) / 10;
      this.emit({
        type: 'frame_rejected',
        time: now,
        code,
        address,
        count: h.count,
        reason: `${h.count} more ${code} rejections from ${address} in ${secs} s, not reported one by one (last: ${h.reason.slice(0, 200)})`,
      });
    }
  }
}
