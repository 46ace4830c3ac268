import { describe, expect, it } from 'vitest';
import { localWorkerEnv, pinWorkersFromEnv, tokenFromEnv } from './env.js';

describe("the coordinator's environment variables", () => {
  it('a local worker gets the token, the local worker count and its thread share, unless threads are set here', () => {
    const env = localWorkerEnv({ token: 's3cret', count: 2, threads: 3 }, { PATH: '/bin' });
    expect(env).toEqual({ PATH: '/bin', DPTRAIN_NATIVE_THREADS: '3', OMP_NUM_THREADS: '3', DPTRAIN_TOKEN: 's3cret', DPTRAIN_LOCAL_WORKERS: '2' });
    const mine = localWorkerEnv({ token: 't', count: 2, threads: 3 }, { DPTRAIN_NATIVE_THREADS: '1', OMP_NUM_THREADS: '1', DPTRAIN_TOKEN: 'old' });
    expect(mine).toMatchObject({ DPTRAIN_NATIVE_THREADS: '1', OMP_NUM_THREADS: '1', DPTRAIN_TOKEN: 't' });
  });

  it('DPTRAIN_TOKEN and DPTRAIN_PIN_WORKERS', () => {
    expect(tokenFromEnv({ DPTRAIN_TOKEN: 'abc' })).toBe('abc');
    expect(tokenFromEnv({})).toBeUndefined();
    expect(pinWorkersFromEnv({ DPTRAIN_PIN_WORKERS: '0' })).toBe(false);
    expect(pinWorkersFromEnv({})).toBe(true);
  });
});
