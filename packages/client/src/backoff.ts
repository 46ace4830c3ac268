export interface BackoffOptions {
  /** First delay in ms. Default 250. */
  initialMs?: number;
  /** Largest delay in ms. Default 5000. */
  maxMs?: number;
  /** Growth factor per failed attempt. Default 2. */
  factor?: number;
  /** Random spread added to each delay, as a fraction of it. Default 0.2. */
  jitter?: number;
}

/** Exponential backoff with jitter: delay(n) = min(maxMs, initialMs * factor^n) * (1 + U(0, jitter)). */
export class Backoff {
  private attempt = 0;
  constructor(private readonly opts: BackoffOptions = {}) {}
  next(): number {
    const { initialMs = 250, maxMs = 5000, factor = 2, jitter = 0.2 } = this.opts;
    const base = Math.min(maxMs, initialMs * factor ** this.attempt);
    this.attempt++;
    return Math.round(base * (1 + Math.random() * jitter));
  }
  reset(): void {
    this.attempt = 0;
  }
}
