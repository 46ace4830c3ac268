/**
 * Test-only hooks, read from the environment so that real worker processes can be driven by tests.
 * DPTRAIN_TEST_BLOCK_STEP_MS=N: the first step this process computes (or step DPTRAIN_TEST_BLOCK_STEP) first blocks
 * its main thread synchronously for N ms, like one long kernel would (Atomics.wait: no CPU spent).
 */
let blocked = false;

export function blockStepForTest(step: number, env: NodeJS.ProcessEnv = process.env): void {
  const ms = Number(env.DPTRAIN_TEST_BLOCK_STEP_MS ?? 0);
  if (blocked || !(ms > 0)) return;
  if (env.DPTRAIN_TEST_BLOCK_STEP !== undefined && Number(env.DPTRAIN_TEST_BLOCK_STEP) !== step) return;
  blocked = true;
  process.stderr.write(`dptrain worker: test hook: blocking the main thread for ${ms} ms in step ${step}\n`);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
