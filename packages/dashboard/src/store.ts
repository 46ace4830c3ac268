import type { EventBus, RunEvent } from '@dptrain/core';
import { dashboardReducer, initialDashboardState, type DashboardLimits, type DashboardState } from './run-state.js';

export interface DashboardStoreOptions {
  /** Bounds of windows and series. Default: see `initialDashboardState`. */
  limits?: Partial<DashboardLimits>;
  /** Coalesce change notifications to at most one per this many ms (0: notify on every event). Default 100. */
  throttleMs?: number;
}

/**
 * Holds the reduced dashboard state and tells subscribers when it changes (for `useSyncExternalStore`).
 * The reducer runs on every event; notifications are coalesced so a burst (a snapshot replay) renders once.
 */
export class DashboardStore {
  private state: DashboardState;
  private readonly limits: Partial<DashboardLimits> | undefined;
  private readonly listeners = new Set<() => void>();
  private readonly throttleMs: number;
  private timer: NodeJS.Timeout | undefined;
  private detachBus: (() => void) | undefined;

  constructor(options: DashboardStoreOptions = {}) {
    this.limits = options.limits;
    this.state = initialDashboardState(options.limits);
    this.throttleMs = options.throttleMs ?? 100;
  }

  /** Feeds one event. */
  dispatch = (event: RunEvent): void => {
    this.state = dashboardReducer(this.state, event);
    this.changed();
  };

  /** Subscribes the store to a bus; returns the unsubscribe function (also called by `close`). */
  attach(bus: EventBus): () => void {
    this.detachBus?.();
    const off = bus.on(this.dispatch);
    this.detachBus = off;
    return off;
  }

  getState = (): DashboardState => this.state;

  /** Forgets every event (e.g. before a reconnected observer receives the history again). */
  reset(): void {
    this.state = initialDashboardState(this.limits);
    this.changed();
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  };

  close(): void {
    this.detachBus?.();
    this.detachBus = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.listeners.clear();
  }

  private changed(): void {
    if (this.throttleMs <= 0) {
      this.notify();
      return;
    }
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.notify();
    }, this.throttleMs);
    this.timer.unref?.();
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }
}
