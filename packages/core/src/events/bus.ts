import { sanitizeEvent } from './sanitize.js';
import type { RunEvent, RunEventListener } from './types.js';

/**
 * A tiny synchronous fan-out of run events. Listener errors are isolated from the run. Every event is passed
 * through sanitizeEvent first, so no listener (terminal, dashboard, log file, observers) sees control characters.
 */
export class EventBus {
  private readonly listeners = new Set<RunEventListener>();
  on(listener: RunEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  emit(raw: RunEvent): void {
    const event = sanitizeEvent(raw);
    for (const l of this.listeners) {
      try {
        l(event);
      } catch {
        // a broken listener (e.g. a closed dashboard) must never stop training
      }
    }
  }
}
