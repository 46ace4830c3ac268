import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import pino, { type Logger, type Level } from 'pino';
import type { EventBus, RunEvent } from '@dptrain/core';
import { formatRate } from '../format.js';

/** Default JSON log file name inside a run directory. */
export const RUN_LOG_FILE = 'run.log.jsonl';

export interface JsonLogOptions {
  /** Lowest pino level written. Default 'debug' (everything: step events are logged at 'debug'). */
  level?: Level;
  /** Extra fields on every line (e.g. `{ runId }`). Default: none. */
  base?: Record<string, unknown>;
}

export interface JsonLogHandle {
  /** The pino logger (other parts of the run may log through it too). */
  logger: Logger;
  /** Path of the log file. */
  file: string;
  /** Stops logging and flushes the file. Idempotent. */
  close(): void;
}

/** The pino level of an event: warnings for losses and rejected frames, debug for per-step and heartbeat chatter. */
export function eventLevel(e: RunEvent): Level {
  switch (e.type) {
    case 'log':
      return e.level;
    case 'worker_lost':
    case 'frame_rejected':
      return 'warn';
    case 'step_completed':
    case 'worker_heartbeat':
    case 'progress':
      return 'debug';
    default:
      return 'info';
  }
}

/** A short human message for an event (the JSON line's `msg`). */
export function eventMessage(e: RunEvent): string {
  switch (e.type) {
    case 'run_started':
      return `run ${e.runId} started`;
    case 'phase_started':
      return `phase ${e.phase} started`;
    case 'epoch_started':
      return `epoch ${e.epoch} started`;
    case 'step_completed':
      return `step ${e.step} loss ${e.loss.toFixed(4)}`;
    case 'epoch_completed':
      return `epoch ${e.epoch} val acc ${(e.valAccuracy * 100).toFixed(2)}%`;
    case 'worker_joined':
      return `worker ${e.worker.id} joined`;
    case 'worker_lost':
      return `worker ${e.id} lost: ${e.reason}`;
    case 'worker_heartbeat':
      return `heartbeat ${e.id}`;
    case 'waiting_for_workers':
      return `waiting for workers ${e.connected}/${e.required}`;
    case 'checkpoint_written':
      return `checkpoint ${e.path}`;
    case 'early_stopping':
      return e.stopped ? 'early stopping: stopped' : `early stopping ${e.wait}/${e.patience}`;
    case 'lr_changed':
      return `learning rate ${formatRate(e.learningRate)}`;
    case 'progress':
      return `${e.task} ${e.done}/${e.total}`;
    case 'frame_rejected':
      return `frame rejected [${e.code}]`;
    case 'run_completed':
      return 'run completed';
    case 'log':
      return e.message;
  }
}

/**
 * Writes every event as one JSON line (pino) to `file`: `{"level":"info","time":<event time>,"event":"<type>",
 * ...event fields, "msg": "..."}`. Written synchronously, so a crash loses nothing that was emitted.
 */
export function attachJsonLog(bus: EventBus, file: string, options: JsonLogOptions = {}): JsonLogHandle {
  mkdirSync(dirname(file), { recursive: true });
  const dest = pino.destination({ dest: file, sync: true, append: true });
  const logger = pino(
    {
      level: options.level ?? 'debug',
      base: options.base ?? null,
      // the event's own `time` (from the run's clock) is the timestamp
      timestamp: false,
      formatters: { level: (label) => ({ level: label }) },
    },
    dest,
  );
  const off = bus.on((e) => {
    const { type, time, ...fields } = e;
    const level = eventLevel(e);
    const obj: Record<string, unknown> = { time, event: type, ...fields };
    if (type === 'log') {
      delete obj.message;
      delete obj.level;
    }
    logger[level](obj, eventMessage(e));
  });
  let closed = false;
  return {
    logger,
    file,
    close() {
      if (closed) return;
      closed = true;
      off();
      dest.flushSync();
      dest.end();
    },
  };
}
