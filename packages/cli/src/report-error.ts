import { asError, describeErrorContext, errorContext, isDptrainError } from '@dptrain/core';

/** Options of {@link formatCliError}. */
export interface CliErrorReportOptions {
  /** Print the error's stack (and its causes') above the last line. Default false (`--verbose` or DPTRAIN_DEBUG=1 set it). */
  verbose?: boolean;
}

/** Codes a worker or a library may relay that are not a dptrain error of this process, yet are not internal either. */
const RELAYED_CODE = /^E_[A-Z0-9_]+$/;
const NOT_RELAYED = new Set(['E_WORKER', 'E_INTERNAL']);

/** The code and message the CLI reports for `err` (without the `dptrain: ` prefix). */
export function classifyCliError(err: unknown): { code: string; message: string; internal: boolean } {
  if (isDptrainError(err) && !NOT_RELAYED.has(err.code)) return { code: err.code, message: err.message, internal: false };
  const e = asError(err);
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && RELAYED_CODE.test(code) && !NOT_RELAYED.has(code)) return { code, message: e.message, internal: false };
  if (typeof code === 'string' && typeof (e as { syscall?: unknown }).syscall === 'string') {
    return { code: 'E_IO', message: e.message, internal: false }; // ENOENT, EACCES, EADDRINUSE...: names the path or address
  }
  const where = describeErrorContext(errorContext(e));
  return { code: 'E_INTERNAL', message: `internal error${where ? ` in ${where}` : ''}: ${e.name}: ${e.message}`, internal: true };
}

/**
 * What the CLI prints for an error that ended a command, as lines; the last is always `dptrain: [CODE] message`.
 * A DptrainError keeps its code; an OS error is E_IO; anything else is E_INTERNAL, named with the phase, step,
 * layer and kernel it carries (util/error-context), and says how to see its stack unless the stack is shown.
 */
export function formatCliError(err: unknown, options: CliErrorReportOptions = {}): string[] {
  const { code, message, internal } = classifyCliError(err);
  const lines: string[] = [];
  if (options.verbose) {
    let cause: unknown = err;
    for (let depth = 0; cause !== undefined && depth < 5; depth++) {
      const e = asError(cause);
      lines.push(`${depth === 0 ? '' : 'caused by: '}${e.stack ?? `${e.name}: ${e.message}`}`);
      cause = e.cause;
    }
  }
  const hint = internal ? (options.verbose ? ' (stack above)' : ' (run again with --verbose or DPTRAIN_DEBUG=1 to see its stack)') : '';
  lines.push(`dptrain: [${code}] ${message}${hint}`);
  return lines;
}

/**
 * The last line of a worker that stopped for good without finishing a run: `dptrain: [CODE] message`, the code
 * taken from the detail ("E_AUTH: ...") when it starts with one, else E_TIMEOUT for a worker that gave up.
 */
export function workerFailureLine(exit: { reason: string; detail: string }): string {
  const m = /^(E_[A-Z0-9_]+): ([\s\S]*)$/.exec(exit.detail);
  if (m) return `dptrain: [${m[1]}] worker ${exit.reason === 'gave_up' ? 'gave up' : exit.reason}: ${m[2]}`;
  return `dptrain: [${exit.reason === 'gave_up' ? 'E_TIMEOUT' : 'E_INTERNAL'}] worker ${exit.reason === 'gave_up' ? 'gave up' : exit.reason}: ${exit.detail}`;
}
