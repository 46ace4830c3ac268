/**
 * The DPTRAIN_* environment variables that @dptrain/core reads, read here and nowhere else in the package. Each
 * function takes the environment to read, process.env by default.
 */

/** Set by `dptrain single`/`demo` in the environment of the local workers they start: how many share this machine. */
export const LOCAL_WORKERS_VAR = 'DPTRAIN_LOCAL_WORKERS';

/** $DPTRAIN_LOCAL_WORKERS: how many local workers share this machine's GPUs; 1 when unset or not a number. */
export function localWorkerCount(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env[LOCAL_WORKERS_VAR] ?? '1');
  return Number.isFinite(n) ? n : 1;
}

/** DPTRAIN_DEVICE_STEP=1/0: the device step forced on or off; undefined when unset (or another value). */
export function deviceStepFromEnv(env: NodeJS.ProcessEnv = process.env): boolean | undefined {
  const v = env.DPTRAIN_DEVICE_STEP;
  return v === '1' || v === '0' ? v === '1' : undefined;
}

/** DPTRAIN_NATIVE_OPTIMIZER=0: the optimizer keeps its JS loop even where the native addon loads. */
export function nativeOptimizerAllowed(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.DPTRAIN_NATIVE_OPTIMIZER !== '0';
}

/** DPTRAIN_DEBUG: print the stack of an unexpected error (any value but '', '0', 'false'). */
export function debugFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.DPTRAIN_DEBUG;
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}
