/**
 * Test-only hooks, read from the environment so that real worker processes can be driven by tests.
 * DPTRAIN_TEST_BLOCK_STEP_MS=N: the first step this process computes (or step DPTRAIN_TEST_BLOCK_STEP) first blocks
 * its main thread synchronously for N ms, like one long kernel would (Atomics.wait: no CPU spent).
 * DPTRAIN_TEST_STEP_MS_PER_SAMPLE=N: every step waits N ms per sample of its slice before computing (asynchronously:
 * heartbeats go on), so that a test can run a slower worker; the wait counts in the reply's compute time.
 */
import { blockStepFromEnv, slowStepMsPerSample } from './env.js';

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

/** Waits DPTRAIN_TEST_STEP_MS_PER_SAMPLE ms per sample of a step's slice (nothing when it is not set). */
export async function slowStepForTest(samples: number, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const ms = slowStepMsPerSample(env) * samples;
  if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
}
