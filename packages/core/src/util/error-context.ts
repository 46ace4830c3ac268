/**
 * Where an error happened, carried on the error object itself from the kernel up to the CLI: each level that
 * knows something (a tfjs kernel, a layer, the replica's step, the training loop) adds its part while the error
 * passes through, so that an unexpected error can be reported as "internal error in phase fine_tune, epoch 2,
 * step 37, layer mixed1 (Concatenate), kernel Identity". The innermost level that sets a field wins.
 */
export interface ErrorContext {
  /** Training phase ('head', 'fine_tune'). */
  phase?: string;
  /** Epoch of the phase, 1-based. */
  epoch?: number;
  /** Global optimizer step, 1-based (as in step_completed events). */
  step?: number;
  /** What the run was doing outside a training step ('validation', 'test prediction', 'saving the model', ...). */
  task?: string;
  /** Innermost tfjs layer: "name (ClassName)". */
  layer?: string;
  /** tfjs kernels, innermost first (a kernel run by another kernel's bookkeeping is followed by that kernel). */
  kernels?: string[];
}

const CONTEXT = Symbol.for('dptrain.errorContext');

type Annotated = Error & { [CONTEXT]?: ErrorContext };

/** The error as an Error object (a thrown string or other value becomes the message of a new Error). */
export function asError(err: unknown): Error {
  if (err instanceof Error) return err;
  return new Error(typeof err === 'string' ? err : `non-error value thrown: ${String(err)}`);
}

/**
 * Adds `ctx` to what the error already carries (fields already set are kept: they come from closer to where it
 * was thrown) and returns the error, ready to be rethrown.
 */
export function addErrorContext(err: unknown, ctx: ErrorContext): Error {
  const e = asError(err) as Annotated;
  const had = e[CONTEXT] ?? {};
  const merged: ErrorContext = { ...ctx, ...had };
  if (ctx.kernels && had.kernels) merged.kernels = [...had.kernels, ...ctx.kernels.filter((k) => had.kernels!.at(-1) !== k)];
  try {
    Object.defineProperty(e, CONTEXT, { value: merged, configurable: true, enumerable: false, writable: true });
  } catch {
    // a frozen error object: report it without context
  }
  return e;
}

/** Adds one kernel (the one whose run failed) to the error's kernel list. */
export function addKernelToError(err: unknown, kernelName: string): Error {
  return addErrorContext(err, { kernels: [kernelName] });
}

/** What the error carries (empty when nothing was added). */
export function errorContext(err: unknown): ErrorContext {
  return (err instanceof Error ? (err as Annotated)[CONTEXT] : undefined) ?? {};
}

/** "phase fine_tune, epoch 2, step 37, layer mixed1 (Concatenate), kernel Identity (inside Concat)", or '' when nothing is known. */
export function describeErrorContext(ctx: ErrorContext): string {
  const parts: string[] = [];
  if (ctx.phase !== undefined) parts.push(`phase ${ctx.phase}`);
  if (ctx.epoch !== undefined) parts.push(`epoch ${ctx.epoch}`);
  if (ctx.step !== undefined) parts.push(`step ${ctx.step}`);
  if (ctx.task !== undefined) parts.push(ctx.task);
  if (ctx.layer !== undefined) parts.push(`layer ${ctx.layer}`);
  if (ctx.kernels && ctx.kernels.length > 0) {
    const [inner, ...outer] = ctx.kernels;
    parts.push(`kernel ${inner}${outer.length > 0 ? ` (inside ${outer.join(' < ')})` : ''}`);
  }
  return parts.join(', ');
}

/** Runs `fn`; an error it throws gets `ctx` added (see addErrorContext). */
export async function withErrorContext<T>(ctx: ErrorContext, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw addErrorContext(err, ctx);
  }
}

/**
 * One line for an unexpected error: "TypeError: message (phase fine_tune, step 37, layer ..., kernel ...)", the
 * context left out when nothing is known (a worker sends this to the coordinator, the CLI prints it).
 */
export function describeUnexpectedError(err: unknown): string {
  const e = asError(err);
  const where = describeErrorContext(errorContext(e));
  return `${e.name}: ${e.message}${where ? ` (${where})` : ''}`;
}
