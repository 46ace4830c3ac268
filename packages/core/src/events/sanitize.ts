import type { RunEvent } from './types.js';

// Escape sequences (CSI `ESC [ ... final` or 8-bit CSI, OSC `ESC ] ... BEL|ST`, two-byte escapes), then any other
// C0 control (but tab and newline), DEL, C1 controls (incl. the 8-bit CSI), and bidirectional overrides.
const ESCAPE_SEQUENCE = /(?:\u001b\[|\u009b)[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|\u001b[@-Z\\-_]/g;
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
const ANY_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

export interface StripControlOptions {
  /** Keep line breaks (a log message may span lines). Default false: a newline becomes a space. */
  keepNewlines?: boolean;
}

/**
 * Removes what could drive a terminal from text a peer may have chosen: escape sequences, control
 * characters (a tab stays; newlines stay only with `keepNewlines`) and bidirectional overrides.
 */
export function stripControl(text: string, options: StripControlOptions = {}): string {
  let out = text;
  if (ANY_CONTROL.test(out)) out = out.replace(ESCAPE_SEQUENCE, '').replace(CONTROL, '');
  if (!options.keepNewlines && (out.includes('\n') || out.includes('\r'))) out = out.replace(/\r?\n|\r/g, ' ');
  return out;
}

function clean(value: unknown, keepNewlines: boolean): unknown {
  if (typeof value === 'string') return stripControl(value, { keepNewlines });
  if (Array.isArray(value)) return value.map((v) => clean(v, keepNewlines));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = clean(v, keepNewlines);
    return out;
  }
  return value;
}

const NEEDS_CLEANING = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]|[\r\n]/;

function needsCleaning(value: unknown): boolean {
  if (typeof value === 'string') return NEEDS_CLEANING.test(value);
  if (Array.isArray(value)) return value.some(needsCleaning);
  if (value && typeof value === 'object') return Object.values(value).some(needsCleaning);
  return false;
}

/**
 * A copy of the event whose every string went through stripControl (line breaks kept in a log message only),
 * or the event itself when nothing needed cleaning. Peers choose many of these strings (host names, error
 * messages, rejected frame types), and the event stream reaches the terminal, the dashboard and observers.
 */
export function sanitizeEvent(event: RunEvent): RunEvent {
  if (!needsCleaning(event)) return event;
  if (event.type === 'log') return { ...event, message: stripControl(event.message, { keepNewlines: true }) };
  return clean(event, false) as RunEvent;
}
