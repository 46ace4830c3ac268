/**
 * The DPTRAIN_* environment variables that @dptrain/worker reads, read here and nowhere else in the package
 * (DPTRAIN_DEBUG goes through core's debugFromEnv). Each function takes the environment, process.env by default.
 */

/** DPTRAIN_LIVENESS_THREAD=0: no heartbeat thread (the main thread answers the coordinator's heartbeats). */
export function livenessThreadAllowed(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.DPTRAIN_LIVENESS_THREAD !== '0';
}

/** Test hook settings: block the main thread for `ms` in `step` (any step when undefined). */
export interface BlockStepSetting {
  ms: number;
  step?: number;
}

/** DPTRAIN_TEST_BLOCK_STEP_MS (and DPTRAIN_TEST_BLOCK_STEP): see test-hooks.ts; null when unset or not positive. */
export function blockStepFromEnv(env: NodeJS.ProcessEnv = process.env): BlockStepSetting | null {
  const ms = Number(env.DPTRAIN_TEST_BLOCK_STEP_MS ?? 0);
  if (!(ms > 0)) return null;
  return env.DPTRAIN_TEST_BLOCK_STEP === undefined ? { ms } : { ms, step: Number(env.DPTRAIN_TEST_BLOCK_STEP) };
}

/** DPTRAIN_TEST_STEP_MS_PER_SAMPLE: see test-hooks.ts; 0 when unset or not positive. */
export function slowStepMsPerSample(env: NodeJS.ProcessEnv = process.env): number {
  const ms = Number(env.DPTRAIN_TEST_STEP_MS_PER_SAMPLE ?? 0);
  return ms > 0 ? ms : 0;
}

/** DPTRAIN_TEST_BUCKET_GAP_MS in `step` (and DPTRAIN_TEST_BUCKET_GAP_STEP: only that step): see test-hooks.ts; 0 when unset, not positive or another step. */
export function bucketGapMs(step: number, env: NodeJS.ProcessEnv = process.env): number {
  const ms = Number(env.DPTRAIN_TEST_BUCKET_GAP_MS ?? 0);
  if (env.DPTRAIN_TEST_BUCKET_GAP_STEP !== undefined && Number(env.DPTRAIN_TEST_BUCKET_GAP_STEP) !== step) return 0;
  return ms > 0 ? ms : 0;
}
