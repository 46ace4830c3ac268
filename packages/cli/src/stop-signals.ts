import { constants } from 'node:os';
import { isDptrainError } from '@dptrain/core';

/** The signals that stop a run cleanly: Ctrl-C, `kill`, a closed terminal. */
export const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** Defaults of {@link stopOnSignals}. */
export const STOP_SIGNAL_DEFAULTS = { graceMs: 120_000 } as const;

export interface StopOnSignalsOptions {
  /** Where the stop is announced. */
  say: (line: string) => void;
  /** How long the run may take, after the first signal, to finish its step and checkpoint before the process exits anyway, in ms. Default 120000. */
  graceMs?: number;
  /** Ends the process at once (a second signal, or the grace time is over). Default: process.exit. */
  exit?: (code: number) => void;
  /** The process whose signals are handled. Default: process. */
  target?: Pick<NodeJS.Process, 'on' | 'off'>;
}

export interface StopHandle {
  /** Aborted at the first signal: pass to runTraining as `stopSignal`. */
  signal: AbortSignal;
  /** The first signal received, if any. */
  received(): NodeJS.Signals | undefined;
  /** The conventional exit status for the received signal (128 + its number), if any. */
  exitCode(): number | undefined;
  /** Removes the handlers (the run is over). */
  dispose(): void;
}

/** 128 + the signal's number: the status a shell reports for a process ended by it (130 for SIGINT). */
export function signalExitCode(sig: NodeJS.Signals): number {
  return 128 + (constants.signals[sig] ?? 1);
}

/**
 * First SIGINT/SIGTERM/SIGHUP: aborts `signal` (the run finishes the step in flight, writes a checkpoint and
 * returns), and says so. A second signal, or no return within `graceMs`, ends the process at once (the last
 * checkpoint written stays; local workers exit by themselves when their parent is gone).
 */
export function stopOnSignals(opts: StopOnSignalsOptions): StopHandle {
  const controller = new AbortController();
  const target = opts.target ?? process;
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  let first: NodeJS.Signals | undefined;
  let timer: NodeJS.Timeout | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (first) {
      opts.say(`${sig} again: stopping now, without a final checkpoint`);
      exit(signalExitCode(first));
      return;
    }
    first = sig;
    opts.say(`${sig}: finishing the current step, then writing a checkpoint and stopping (${sig} again stops at once)`);
    controller.abort();
    const grace = opts.graceMs ?? STOP_SIGNAL_DEFAULTS.graceMs;
    timer = setTimeout(() => {
      opts.say(`the run did not stop within ${Math.round(grace / 1000)} s of ${sig}: stopping now, without a final checkpoint`);
      exit(signalExitCode(sig));
    }, grace);
    timer.unref();
  };
  for (const s of STOP_SIGNALS) target.on(s, onSignal);
  return {
    signal: controller.signal,
    received: () => first,
    exitCode: () => (first ? signalExitCode(first) : undefined),
    dispose: () => {
      if (timer) clearTimeout(timer);
      for (const s of STOP_SIGNALS) target.off(s, onSignal);
    },
  };
}

/**
 * After a run returned `stopped` (`steps` given) or threw while stopping (`err`): says where it stopped and how to
 * go on, and sets the exit status to the signal's. False (nothing done) when no signal came or `err` is another error.
 */
export function reportStop(stop: StopHandle, how: { steps?: number; err?: unknown; resumeHint: string; say: (line: string) => void }): boolean {
  const sig = stop.received();
  if (!sig) return false;
  if (how.err !== undefined && !isDptrainError(how.err, 'E_STOPPED')) return false;
  how.say(
    how.steps !== undefined
      ? `stopped by ${sig} after step ${how.steps}: checkpoint written; continue with ${how.resumeHint}`
      : `stopped by ${sig} while waiting for workers: the last checkpoint stands; continue with ${how.resumeHint}`,
  );
  process.exitCode = stop.exitCode();
  return true;
}

/** What a cluster command's run returns: whether a signal stopped it, and after how many steps. */
export interface StoppableRun {
  stopped?: boolean;
  steps: number;
}

/** The run views, as {@link runUntilStopped} uses them. */
export interface StoppableViews {
  say(line: string): void;
  /** The run ended: charts and the summary, then close. */
  finish(): Promise<void>;
  /** Close without the end-of-run output (a stop or a failure). */
  close(): Promise<void>;
}

/**
 * Runs a cluster command's training (`single`, `coordinator`) under stop signals and its run views. A run stopped
 * by a signal closes the views and says how to go on (`resumeHint`); a run that ends says `done`'s line and
 * finishes the views; a failure closes them and is rethrown, unless it is the stop itself (E_STOPPED while
 * waiting for workers). `signals`: stopOnSignals' options (tests pass a fake process).
 */
export async function runUntilStopped<R extends StoppableRun>(
  views: StoppableViews,
  resumeHint: string,
  run: (stopSignal: AbortSignal) => Promise<R>,
  done: (result: R) => string,
  signals: Omit<StopOnSignalsOptions, 'say'> = {},
): Promise<void> {
  const say = (line: string): void => views.say(line);
  const stop = stopOnSignals({ ...signals, say });
  let ok = false;
  try {
    const result = await run(stop.signal);
    if (result.stopped) {
      await views.close(); // first, so that the line below stays on the terminal after the dashboard
      reportStop(stop, { steps: result.steps, resumeHint, say });
      return;
    }
    say(done(result));
    ok = true;
  } catch (err) {
    if (!reportStop(stop, { err, resumeHint, say })) throw err;
  } finally {
    stop.dispose();
    if (ok) await views.finish();
    else await views.close();
  }
}
