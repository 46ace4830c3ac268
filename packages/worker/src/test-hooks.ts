/**
 * Test-only hooks, read from the environment so that real worker processes can be driven by tests.
 * DPTRAIN_TEST_BLOCK_STEP_MS=N: the first step this process computes (or step DPTRAIN_TEST_BLOCK_STEP) first blocks
 * its main thread synchronously for N ms, like one long kernel would (Atomics.wait: no CPU spent).
 * DPTRAIN_TEST_STEP_MS_PER_SAMPLE=N: every step waits N ms per sample of its slice before computing (asynchronously:
 * heartbeats go on), so that a test can run a slower worker; the wait counts in the reply's compute time.
 * DPTRAIN_TEST_BUCKET_GAP_MS=N: a plain worker asked for gradient buckets waits N ms before each bucket after the first
 * (asynchronously), in every step or only in step DPTRAIN_TEST_BUCKET_GAP_STEP, so that a test can see whether an
 * agent (which never waits so itself) sends its merged buckets on as they come, and kill a worker halfway through.
 */
import { bucketRanges, type MessageOf } from '@dptrain/core';
import { blockStepFromEnv, bucketGapMs, slowStepMsPerSample } from './env.js';
import type { GradientOut } from './gradient-stream.js';

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

/**
 * With DPTRAIN_TEST_BUCKET_GAP_MS set for step `msg`, sends gradient `g` to `out` in the step's buckets, waiting the
 * gap before each after the first, and returns true; otherwise sends nothing and returns false.
 */
export async function sendBucketsSlowlyForTest(
  msg: MessageOf<'step'>,
  g: Float32Array,
  out: GradientOut,
  env: NodeJS.ProcessEnv = process.env,
): Promise<boolean> {
  const ms = bucketGapMs(msg.step, env);
  if (!(ms > 0) || msg.bucketFloats === undefined) return false;
  for (const r of bucketRanges(g.length, msg.bucketFloats)) {
    if (r.start > 0) await new Promise((resolve) => setTimeout(resolve, ms));
    out(r.start, g.length, g.subarray(r.start, r.end));
  }
  return true;
}
