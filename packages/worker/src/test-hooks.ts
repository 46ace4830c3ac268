/**
 * Test-only hooks, read from the environment so that real worker processes can be driven by tests.
 * DPTRAIN_TEST_BLOCK_STEP_MS=N: the first step this process computes (or step DPTRAIN_TEST_BLOCK_STEP) first blocks
 * its main thread synchronously for N ms, like one long kernel would (Atomics.wait: no CPU spent).
 */
import { blockStepFromEnv } from './env.js';

let blocked = false;

export function blockStepForTest(step: number, env: NodeJS.ProcessEnv = process.env): void {
  const setting = blockStepFromEnv(env);
  if (blocked || !setting) return;
  if (setting.step !== undefined && setting.step !== step) return;
  const { ms } = setting;
  blocked = true;
  process.stderr.write(`dptrain worker: test hook: blocking the main thread for ${ms} ms in step ${step}\n`);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
