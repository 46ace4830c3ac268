import { DptrainError, type Clock } from '@dptrain/core';
import type { ClusterServer } from './server.js';

/**
 * How many workers training needs: `minWorkers` at every wait, and, at the run's first wait, `startWorkers`
 * (`--start-workers` beside `--min-workers`, as Horovod's `-np` beside `--min-np`). Waiting says so with
 * `waiting_for_workers` events.
 */
export class WorkerQuorum {
  private minWorkers: number;
  /** What the first wait needs; 0 once it was met. */
  private startWorkers: number;
  private failure: Error | undefined;
  private closed = false;

  constructor(
    private readonly server: ClusterServer,
    private readonly clock: Clock,
    minWorkers = 1,
    startWorkers = 0,
  ) {
    this.minWorkers = Math.max(1, minWorkers);
    this.startWorkers = startWorkers;
  }

  /** The workers every wait needs. */
  get min(): number {
    return this.minWorkers;
  }

  /** Changes the workers every wait needs; a wait in progress sees it within a second. */
  setMin(n: number): void {
    this.minWorkers = Math.max(1, n);
  }

  /** Makes every wait fail with `err` (no worker can ever come back). */
  fail(err: Error): void {
    this.failure = err;
  }

  /** Ends every wait (with E_TIMEOUT). */
  close(): void {
    this.closed = true;
  }

  /** Waits until min(`n`, minWorkers) workers are joined (and, the first time, startWorkers). */
  async wait(n: number = this.minWorkers): Promise<void> {
    let said = -1;
    const need = (): number => Math.max(Math.min(n, this.minWorkers), this.startWorkers);
    while (this.server.workers.length < need()) {
      if (this.failure) throw this.failure;
      if (this.closed) throw new DptrainError('E_TIMEOUT', 'executor closed while waiting for workers');
      const connected = this.server.workers.length;
      if (connected !== said) {
        this.server.emit({ type: 'waiting_for_workers', time: this.clock.now(), connected, required: need() });
        said = connected;
      }
      await this.server.waitForJoin(1000);
    }
    this.startWorkers = 0;
  }
}
