import { systemClock, type Clock, type ProgressTask, type RunEvent } from '@dptrain/core';
import { formatClock, formatDuration, progressBar } from '../format.js';

type ProgressEvent = Extract<RunEvent, { type: 'progress' }>;

export interface TaskProgressOptions {
  /** Where to write. Default: process.stderr. */
  stream?: NodeJS.WritableStream;
  /** Redraw one bar line in place (true) or print lines (false). Default: whether `stream` is a TTY. */
  interactive?: boolean;
  /** Clock for rate and ETA. Default: the system clock. */
  clock?: Clock;
  /** Non-interactive: print a line each time this fraction more is done. Default 0.25. */
  step?: number;
  /** Prefix printed lines with HH:MM:SS. Default true. */
  timestamps?: boolean;
  /** Bar width in cells. Default 30. */
  width?: number;
  /** Minimum ms between redraws of the interactive bar. Default 100. */
  redrawMs?: number;
  /** Tasks are shown only once they have run this long (by event times), so short ones stay silent. Default 1000. */
  quietMs?: number;
}

interface Running {
  task: ProgressTask;
  total: number;
  done: number;
  startedAt: number;
  lastPrintedFraction: number;
  lastDrawAt: number;
  lastEventAt: number;
  /** Whether a line or the bar has been shown for this task. */
  shown: boolean;
}

const label = (t: ProgressTask): string => t.replace('_', ' ');

/**
 * Progress of long single-process work (validation, feature extraction, evaluation, prediction) from
 * `progress` events: a bar redrawn in place on a terminal, or a few lines (start, every `step`, end) otherwise.
 * Other output goes through `println`, which keeps the bar below it.
 */
export class TaskProgressReporter {
  private readonly stream: NodeJS.WritableStream;
  private readonly interactive: boolean;
  private readonly clock: Clock;
  private readonly step: number;
  private readonly stamps: boolean;
  private readonly width: number;
  private readonly redrawMs: number;
  private readonly quietMs: number;
  private running: Running | undefined;
  private barShown = false;

  constructor(options: TaskProgressOptions = {}) {
    this.stream = options.stream ?? process.stderr;
    this.interactive = options.interactive ?? Boolean((this.stream as { isTTY?: boolean }).isTTY);
    this.clock = options.clock ?? systemClock;
    this.step = options.step ?? 0.25;
    this.stamps = options.timestamps ?? true;
    this.width = options.width ?? 30;
    this.redrawMs = options.redrawMs ?? 100;
    this.quietMs = options.quietMs ?? 1000;
  }

  /** Prints a whole line above the bar. */
  println(text: string): void {
    this.clearBar();
    this.stream.write(`${text}\n`);
    this.drawBar(true);
  }

  update(e: ProgressEvent): void {
    let r = this.running;
    if (!r || r.task !== e.task || e.done < r.done || e.total !== r.total) {
      if (r && r.done < r.total && r.shown) this.finish(r, e.time, false);
      r = { task: e.task, total: e.total, done: e.done, startedAt: e.time, lastPrintedFraction: -1, lastDrawAt: 0, lastEventAt: e.time, shown: false };
      this.running = r;
    }
    r.done = e.done;
    r.lastEventAt = e.time;
    // short tasks (an epoch's evaluation of a small validation set) stay silent
    const visible = r.shown || e.time - r.startedAt >= this.quietMs;
    if (e.done >= e.total) {
      if (visible) this.finish(r, e.time, true);
      this.running = undefined;
      return;
    }
    if (!visible) return;
    if (this.interactive) {
      this.drawBar(!r.shown);
    } else if (!r.shown || (e.total > 0 && e.done / e.total - r.lastPrintedFraction >= this.step)) {
      this.printLine(r, e.time);
    }
    r.shown = true;
  }

  /** Ends an open bar line. */
  close(): void {
    this.clearBar();
    this.running = undefined;
  }

  private finish(r: Running, time: number, complete: boolean): void {
    this.clearBar();
    const took = formatDuration(time - r.startedAt);
    const text = complete ? `${label(r.task)}: ${r.total}/${r.total} done in ${took}` : `${label(r.task)}: stopped at ${r.done}/${r.total} after ${took}`;
    this.stream.write(`${this.stamps ? `${formatClock(time)} ` : ''}${text}\n`);
    this.running = undefined;
  }

  private printLine(r: Running, time: number): void {
    const f = r.total > 0 ? r.done / r.total : 0;
    r.lastPrintedFraction = f;
    this.stream.write(
      `${this.stamps ? `${formatClock(time)} ` : ''}${label(r.task)}: ${r.done}/${r.total} (${Math.round(f * 100)}%)${this.etaText(r, time)}\n`,
    );
  }

  private etaText(r: Running, now: number): string {
    if (r.done <= 0) return '';
    const elapsed = now - r.startedAt;
    if (elapsed <= 0) return '';
    const rate = (r.done * 1000) / elapsed;
    return `  ${rate.toFixed(1)}/s  ETA ${formatDuration((r.total - r.done) / (rate / 1000))}`;
  }

  private drawBar(force: boolean): void {
    const r = this.running;
    if (!this.interactive || !r) return;
    const now = Math.max(this.clock.now(), r.lastEventAt);
    if (!force && this.barShown && now - r.lastDrawAt < this.redrawMs) return;
    r.lastDrawAt = now;
    const f = r.total > 0 ? r.done / r.total : 0;
    this.stream.write(`\r\u001B[2K${label(r.task)} ${progressBar(f, this.width)} ${r.done}/${r.total} ${Math.round(f * 100)}%${this.etaText(r, now)}`);
    this.barShown = true;
  }

  private clearBar(): void {
    if (!this.barShown) return;
    this.stream.write('\r\u001B[2K');
    this.barShown = false;
  }
}
