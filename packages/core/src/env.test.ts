import { describe, expect, it } from 'vitest';
import { debugFromEnv, deviceStepFromEnv, localWorkerCount, nativeOptimizerAllowed } from './env.js';

describe("core's environment variables", () => {
  it('DPTRAIN_DEBUG: any value but empty, 0 or false', () => {
    expect(debugFromEnv({ DPTRAIN_DEBUG: '1' })).toBe(true);
    expect(debugFromEnv({ DPTRAIN_DEBUG: 'yes' })).toBe(true);
    for (const v of [undefined, '', '0', 'false', 'FALSE']) expect(debugFromEnv(v === undefined ? {} : { DPTRAIN_DEBUG: v })).toBe(false);
  });

  it('DPTRAIN_DEVICE_STEP forces the device step only when 1 or 0', () => {
    expect(deviceStepFromEnv({ DPTRAIN_DEVICE_STEP: '1' })).toBe(true);
    expect(deviceStepFromEnv({ DPTRAIN_DEVICE_STEP: '0' })).toBe(false);
    expect(deviceStepFromEnv({ DPTRAIN_DEVICE_STEP: 'yes' })).toBeUndefined();
    expect(deviceStepFromEnv({})).toBeUndefined();
  });

  it('DPTRAIN_LOCAL_WORKERS counts the local workers (1 when unset or not a number); DPTRAIN_NATIVE_OPTIMIZER=0 turns the native Adam off', () => {
    expect(localWorkerCount({ DPTRAIN_LOCAL_WORKERS: '4' })).toBe(4);
    expect(localWorkerCount({ DPTRAIN_LOCAL_WORKERS: 'many' })).toBe(1);
    expect(localWorkerCount({})).toBe(1);
    expect(nativeOptimizerAllowed({ DPTRAIN_NATIVE_OPTIMIZER: '0' })).toBe(false);
    expect(nativeOptimizerAllowed({})).toBe(true);
  });
});
