import type { ChildProcess } from 'node:child_process';

/** Defaults of {@link WorkerSupervisor}. */
export const WORKER_SUPERVISOR_DEFAULTS = { maxRestarts: 3, restartDelayMs: 1000, stopGraceMs: 3000 } as const;

export interface WorkerSupervisorOptions {
  /** Starts the process of worker slot `slot` (0-based): at the start, and again for each restart. */
  start: (slot: number) => ChildProcess;
  /** How many worker slots. */
  count: number;
  /** Restarts allowed for the whole run, all slots together (as torchrun's `--max-restarts`). Default 3. */
  maxRestarts?: number;
  /** Pause before a restart, in ms (a worker that dies at start does not spin). Default 1000. */
  restartDelayMs?: number;
  /** After SIGTERM, how long `stop()` waits before SIGKILL, in ms. Default 3000. */
  stopGraceMs?: number;
  /** Told of each death, each restart, and the budget running out. Default: nothing. */
  log?: (level: 'info' | 'warn' | 'error', message: string) => void;
  /** Told the number of workers the run can still count on (running or being restarted) whenever it drops for good. Default: nothing. */
  onCapacity?: (workers: number) => void;
  /** Timer for the restart pause. Default: setTimeout. */
  setTimer?: (fn: () => void, ms: number) => void;
}

/** How a worker process ended, as a short phrase. */
function howItEnded(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `killed by ${signal}` : `exited with status ${code}`;
}

/**
 * Keeps N local worker processes running, as torchrun's elastic agent does: a worker that dies (crash, `kill -9`)
 * is started again, up to `maxRestarts` times in all; the coordinator meanwhile completes the step on the
 * survivors (its slice goes to them) and the new process rejoins with the current weights. Once the budget is
 * used up, a dead worker stays dead and the run goes on with the others (`onCapacity` says how many). A worker
 * that exits with status 0 has finished (the run is over) and is not restarted; nor is any after `stop()`.
 */
export class WorkerSupervisor {
  private readonly slots: (ChildProcess | undefined)[];
  private readonly gone = new Set<number>();
  private used = 0;
  private stopping = false;
  private readonly maxRestarts: number;

  constructor(private readonly opts: WorkerSupervisorOptions) {
    this.slots = new Array<ChildProcess | undefined>(opts.count).fill(undefined);
    this.maxRestarts = opts.maxRestarts ?? WORKER_SUPERVISOR_DEFAULTS.maxRestarts;
  }

  /** Restarts done so far. */
  get restarts(): number {
    return this.used;
  }

  /** Slots still counted on: running, or dead and about to be restarted. */
  get capacity(): number {
    return this.opts.count - this.gone.size;
  }

  /** The worker processes now running. */
  get children(): ChildProcess[] {
    return this.slots.filter((c): c is ChildProcess => !!c && c.exitCode === null && c.signalCode === null);
  }

  /** Starts every slot. */
  start(): void {
    for (let i = 0; i < this.opts.count; i++) this.launch(i);
  }

  /** Stops every worker (SIGTERM, then SIGKILL after the grace time) and restarts none from now on. */
  async stop(): Promise<void> {
    this.stopping = true;
    const grace = this.opts.stopGraceMs ?? WORKER_SUPERVISOR_DEFAULTS.stopGraceMs;
    await Promise.all(
      this.children.map(
        (c) =>
          new Promise<void>((resolve) => {
            const t = setTimeout(() => c.kill('SIGKILL'), grace);
            c.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            c.kill('SIGTERM');
          }),
      ),
    );
  }

  private launch(slot: number): void {
    const child = this.opts.start(slot);
    this.slots[slot] = child;
    child.once('exit', (code, signal) => this.onExit(slot, child, code, signal));
  }

  private onExit(slot: number, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.stopping || this.slots[slot] !== child) return;
    const name = `local worker ${slot + 1} (pid ${child.pid})`;
    if (code === 0 && !signal) {
      this.gone.add(slot);
      return; // it finished: the coordinator said the run is over
    }
    const log = this.opts.log ?? (() => undefined);
    if (this.used < this.maxRestarts) {
      this.used++;
      log('warn', `${name} ${howItEnded(code, signal)}; restarting it (restart ${this.used} of ${this.maxRestarts}, --max-restarts)`);
      const timer = this.opts.setTimer ?? ((fn, ms) => void setTimeout(fn, ms));
      timer(() => {
        if (this.stopping) return;
        this.launch(slot);
        log('info', `local worker ${slot + 1} restarted as pid ${this.slots[slot]?.pid}`);
      }, this.opts.restartDelayMs ?? WORKER_SUPERVISOR_DEFAULTS.restartDelayMs);
      return;
    }
    this.gone.add(slot);
    const left = this.capacity;
    log(
      left > 0 ? 'warn' : 'error',
      `${name} ${howItEnded(code, signal)}; the restart budget is used up (${this.maxRestarts} restarts, --max-restarts): ` +
        (left > 0 ? `the run goes on with ${left} of ${this.opts.count} workers` : 'no local worker is left'),
    );
    this.opts.onCapacity?.(left);
  }
}
