import { systemClock, type Clock, type EventBus, type RunEvent } from '@dptrain/core';
import { dashboardReducer, initialDashboardState, type DashboardState } from '../run-state.js';
import { clusterThroughput, phaseEtaMs, phaseProgress, stepTimeP50, stepTimeP99 } from '../selectors.js';
import { formatClock, formatDuration, formatNumber, formatPercent, formatRate } from '../format.js';
import { TaskProgressReporter } from './task-progress.js';

export interface PlainLoggerOptions {
  /** Log a step line every this many steps of a phase (and its first). Default 10. */
  every?: number;
  /** Where lines go. Default: process.stdout. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Draw long-task progress as a redrawn bar (true) or as lines (false). Default: whether `stream` is a TTY. */
  interactive?: boolean;
  /** Clock for ETAs. Default: the system clock. */
  clock?: Clock;
  /** Non-interactive: print a long-task line each time this fraction more is done. Default 0.25. */
  progressStep?: number;
  /** Prefix lines with the event's local time (HH:MM:SS). Default true. */
  timestamps?: boolean;
  /** Long tasks are shown once they have run this long, in ms. Default 1000. */
  quietMs?: number;
  /** State reduced so far (e.g. the dashboard's, when lines take over from a closed view). Default: empty. */
  initialState?: DashboardState;
}

export interface PlainLoggerHandle {
  /** The reduced state the lines are computed from. */
  state(): DashboardState;
  /** Stops logging (finishes an open progress bar line). Idempotent. */
  close(): void;
}

/** The step line: phase, epoch, step, progress, loss, lr, throughput, step times, ETA. */
export function formatStepLine(state: DashboardState, now: number): string {
  const p = state.phase;
  const prog = phaseProgress(state);
  const parts = [p ? `${p.name === 'head' ? 'head' : 'fine-tune'} epoch ${p.epochOrdinal}/${p.epochs || '?'}` : 'training', `step ${state.step}`];
  if (prog && prog.total > 0) parts.push(`(${prog.done}/${prog.total} ${formatPercent(prog.fraction)})`);
  parts.push(`loss ${formatNumber(state.lastLoss, 4)}`);
  parts.push(`lr ${formatRate(state.learningRate)}`);
  const tp = clusterThroughput(state);
  parts.push(`${tp === undefined ? '--' : tp.toFixed(1)} img/s`);
  parts.push(`step p50 ${formatDuration(stepTimeP50(state))} p99 ${formatDuration(stepTimeP99(state))}`);
  const eta = phaseEtaMs(state, now);
  if (eta !== undefined) parts.push(`ETA ${formatDuration(eta)}`);
  return parts.join('  ');
}

/**
 * Line-oriented output for `--plain` and for non-TTY stdout: a step line every `every` steps, one line per
 * notable event (workers joining/leaving, phases, checkpoints, early stopping, epochs, warnings), and long-task
 * progress (a redrawn bar when interactive, lines otherwise).
 */
export function attachPlainLogger(bus: EventBus, options: PlainLoggerOptions = {}): PlainLoggerHandle {
  const every = Math.max(1, options.every ?? 10);
  const stream = options.stream ?? process.stdout;
  const clock = options.clock ?? systemClock;
  const stamps = options.timestamps ?? true;
  const tasks = new TaskProgressReporter({
    stream,
    interactive: options.interactive ?? Boolean(stream.isTTY),
    clock,
    step: options.progressStep ?? 0.25,
    timestamps: stamps,
    quietMs: options.quietMs ?? 1000,
  });
  let state = options.initialState ?? initialDashboardState();
  let lastWaiting = '';
  const line = (time: number, text: string): void => tasks.println(stamps ? `${formatClock(time)} ${text}` : text);

  const onEvent = (event: RunEvent): void => {
    const prev = state;
    state = dashboardReducer(state, event);
    switch (event.type) {
      case 'step_completed': {
        const n = state.phase?.stepsDone ?? event.step;
        if (n % every === 0 || n === 1) line(event.time, formatStepLine(state, Math.max(clock.now(), event.time)));
        return;
      }
      case 'epoch_completed':
        line(
          event.time,
          `${event.phase === 'head' ? 'head' : 'fine-tune'} epoch ${event.epoch + 1}/${state.phase?.epochs || '?'} done in ${formatDuration(event.epochMs)}: ` +
            `train loss ${formatNumber(event.trainLoss, 4)} acc ${formatPercent(event.trainAccuracy)}  ` +
            `val loss ${formatNumber(event.valLoss, 4)} acc ${formatPercent(event.valAccuracy)}  lr ${formatRate(event.learningRate)}`,
        );
        return;
      case 'waiting_for_workers': {
        const text = `waiting for workers: ${event.connected}/${event.required} connected`;
        if (text !== lastWaiting) line(event.time, text);
        lastWaiting = text;
        return;
      }
      case 'progress':
        tasks.update(event);
        return;
      case 'early_stopping':
        // the per-epoch counter is on the dashboard; a log only needs the stop
        if (event.stopped) line(event.time, state.recent[state.recent.length - 1]?.text ?? '');
        return;
      case 'log':
        if (event.level !== 'debug') line(event.time, event.level === 'info' ? event.message : `${event.level}: ${event.message}`);
        return;
      default:
        // every other notable event adds one entry to the reducer's recent list
        if (state.recent !== prev.recent) {
          const r = state.recent[state.recent.length - 1];
          if (r) line(r.time, r.text);
        }
    }
  };
  const off = bus.on(onEvent);
  let closed = false;
  return {
    state: () => state,
    close() {
      if (closed) return;
      closed = true;
      off();
      tasks.close();
    },
  };
}
