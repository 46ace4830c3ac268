/**
 * The DPTRAIN_* environment variables that @dptrain/coordinator reads (and the ones it sets for the local workers it
 * starts), here and nowhere else in the package. Each function takes the environment, process.env by default.
 */
import { LOCAL_WORKERS_VAR } from '@dptrain/core';

/** $DPTRAIN_TOKEN: the shared secret, when set. */
export function tokenFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.DPTRAIN_TOKEN;
}

/** DPTRAIN_PIN_WORKERS=0: local workers are not pinned to CPUs. */
export function pinWorkersFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.DPTRAIN_PIN_WORKERS !== '0';
}

/** What a local worker process is started with. */
export interface LocalWorkerEnvSettings {
  /** The shared secret (in the environment, never on the command line). */
  token: string;
  /** How many local workers share this machine (a tensorflow-gpu worker then sets memory growth). */
  count: number;
  /** oneDNN/OpenMP threads of the worker, unless DPTRAIN_NATIVE_THREADS / OMP_NUM_THREADS are set here. */
  threads: number;
}

/** The environment of a local worker: this one, plus its token, the local worker count and its thread share. */
export function localWorkerEnv(settings: LocalWorkerEnvSettings, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return {
    ...env,
    DPTRAIN_NATIVE_THREADS: env.DPTRAIN_NATIVE_THREADS ?? String(settings.threads),
    OMP_NUM_THREADS: env.OMP_NUM_THREADS ?? String(settings.threads),
    DPTRAIN_TOKEN: settings.token,
    [LOCAL_WORKERS_VAR]: String(settings.count),
  };
}
