import { describe, expect, it } from 'vitest';
import { blockStepFromEnv, livenessThreadAllowed } from './env.js';

describe("the worker's environment variables", () => {
  it('DPTRAIN_LIVENESS_THREAD=0 turns the heartbeat thread off', () => {
    expect(livenessThreadAllowed({ DPTRAIN_LIVENESS_THREAD: '0' })).toBe(false);
    expect(livenessThreadAllowed({})).toBe(true);
  });

  it('DPTRAIN_TEST_BLOCK_STEP_MS (and _STEP) set the blocking test hook only when positive', () => {
    expect(blockStepFromEnv({})).toBeNull();
    expect(blockStepFromEnv({ DPTRAIN_TEST_BLOCK_STEP_MS: '0' })).toBeNull();
    expect(blockStepFromEnv({ DPTRAIN_TEST_BLOCK_STEP_MS: '250' })).toEqual({ ms: 250 });
    expect(blockStepFromEnv({ DPTRAIN_TEST_BLOCK_STEP_MS: '250', DPTRAIN_TEST_BLOCK_STEP: '3' })).toEqual({ ms: 250, step: 3 });
  });
});
