/**
 * The DPTRAIN_NATIVE_* environment variables, read here and nowhere else in this package's TypeScript
 * (scripts/build-native.mjs, plain Node that runs before anything is built, reads DPTRAIN_NATIVE_BUILD itself).
 * Each function takes the environment to read, process.env by default.
 */

/** The native backend's settings from the environment (each undefined when its variable is unset). */
export interface NativeEnv {
  /** DPTRAIN_NATIVE_THREADS: oneDNN (OpenMP) threads of this process, when a positive integer. */
  threads?: number;
  /** DPTRAIN_NATIVE_LAYOUT: activation layout of the oneDNN calls, 'nhwc' or 'any' (other values are ignored). */
  layout?: 'nhwc' | 'any';
  /** DPTRAIN_NATIVE_CONV: the 3x3 convolution algorithm as given (registerNativeBackend checks it). */
  convAlgorithm?: string;
  /** DPTRAIN_NATIVE_POOL_MB, in bytes: most bytes of free output arrays kept for reuse (0: no recycling). */
  poolMaxBytes?: number;
  /** DPTRAIN_NATIVE_FILTER_COPIES: reordered filter copies kept per convolution shape (0: none). */
  filterCopies?: number;
}

/**
 * Reads the settings registerNativeBackend applies. Throws when DPTRAIN_NATIVE_POOL_MB is not a number of MiB or
 * DPTRAIN_NATIVE_FILTER_COPIES not a whole number.
 */
export function readNativeEnv(env: NodeJS.ProcessEnv = process.env): NativeEnv {
  const out: NativeEnv = {};
  const threads = Number(env.DPTRAIN_NATIVE_THREADS ?? '');
  if (Number.isInteger(threads) && threads > 0) out.threads = threads;
  const layout = env.DPTRAIN_NATIVE_LAYOUT;
  if (layout === 'nhwc' || layout === 'any') out.layout = layout;
  if (env.DPTRAIN_NATIVE_CONV !== undefined) out.convAlgorithm = env.DPTRAIN_NATIVE_CONV;
  const poolMb = env.DPTRAIN_NATIVE_POOL_MB?.trim();
  if (poolMb !== undefined && poolMb !== '') {
    const mb = Number(poolMb);
    if (!(mb >= 0) || !Number.isFinite(mb)) {
      throw new Error(`native backend: DPTRAIN_NATIVE_POOL_MB='${poolMb}' is not a number of MiB (0 turns recycling off)`);
    }
    out.poolMaxBytes = mb * 2 ** 20;
  }
  const copies = env.DPTRAIN_NATIVE_FILTER_COPIES?.trim();
  if (copies !== undefined && copies !== '') {
    const n = Number(copies);
    if (!Number.isInteger(n) || n < 0) {
      throw new Error(`native backend: DPTRAIN_NATIVE_FILTER_COPIES='${copies}' is not a whole number of copies (0 keeps none)`);
    }
    out.filterCopies = n;
  }
  return out;
}

/** DPTRAIN_NATIVE_ADDON: a path that replaces the built addon's (tests of the missing-addon path use it). */
export function addonPathFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.DPTRAIN_NATIVE_ADDON;
}

/** DPTRAIN_NATIVE_BUILD=0: never build the addon lazily. */
export function lazyBuildAllowed(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.DPTRAIN_NATIVE_BUILD !== '0';
}

/** DPTRAIN_NATIVE_PROFILE=1: each native kernel also sums the process CPU time it used. */
export function kernelProfilingOn(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.DPTRAIN_NATIVE_PROFILE === '1';
}
