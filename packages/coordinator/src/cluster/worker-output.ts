import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { RunEvent } from '@dptrain/core';

/**
 * Where local workers' output goes:
 * - 'inherit': each line to this process's stderr as it was (plain mode), and to the run log;
 * - 'events': into the run's events only: every line to the run log (level debug), the notable ones
 *   (warnings, errors) at their level, which the dashboard shows in its events pane;
 * - 'ignore': dropped.
 */
export type WorkerOutputMode = 'inherit' | 'events' | 'ignore';

type LogLevel = Extract<RunEvent, { type: 'log' }>['level'];

const ERROR_LINE = /\b(E_[A-Z0-9_]+|error|fatal|refused|failed|gave_up|gave up|uncaught|panic)\b/i;
const WARN_LINE = /\b(warn|warning|deprecat\w*|cannot|lost|silent|bad frame|reconnecting|retry\w*)\b/i;

/** The level a worker's output line is logged at: error, warn, or debug for the ordinary chatter. */
export function workerLineLevel(line: string): LogLevel {
  if (/^\s+at\s/.test(line)) return 'debug'; // a stack frame: its error line above carries the level
  if (ERROR_LINE.test(line)) return 'error';
  if (WARN_LINE.test(line)) return 'warn';
  return 'debug';
}

export interface WorkerOutputOptions {
  /** What to do with the lines. */
  mode: WorkerOutputMode;
  /** Name in the events (e.g. 'local worker 2'). */
  name: string;
  /** Receives the `log` events. */
  emit: (e: RunEvent) => void;
  /** Where 'inherit' writes the lines as they were. Default: process.stderr. */
  stderr?: NodeJS.WritableStream;
  /** Timestamp of the events. Default: Date.now. */
  now?: () => number;
}

/** Reads a child's piped stdout and stderr line by line and routes each line by `mode`. */
export function routeWorkerOutput(child: ChildProcess, opts: WorkerOutputOptions): void {
  const now = opts.now ?? Date.now;
  const stderr = opts.stderr ?? process.stderr;
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    if (opts.mode === 'ignore') {
      stream.resume();
      continue;
    }
    createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      if (opts.mode === 'inherit') stderr.write(`${line}\n`);
      if (!line.trim()) return;
      const text = line.replace(/^dptrain worker: /, '');
      // in plain mode the line is on the terminal already: the run log gets it at debug, so it is not shown twice
      const level = opts.mode === 'inherit' ? 'debug' : workerLineLevel(text);
      opts.emit({ type: 'log', time: now(), level, message: `${opts.name}: ${text}` });
    });
  }
}
