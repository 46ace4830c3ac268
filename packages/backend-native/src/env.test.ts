import { describe, expect, it } from 'vitest';
import { readNativeEnv } from './env.js';
import { OutputPool } from './output-pool.js';

describe('readNativeEnv', () => {
  it('reads each DPTRAIN_NATIVE_* setting once, and leaves out what is unset or unusable', () => {
    expect(readNativeEnv({})).toEqual({});
    expect(readNativeEnv({ DPTRAIN_NATIVE_THREADS: '3', DPTRAIN_NATIVE_LAYOUT: 'any', DPTRAIN_NATIVE_CONV: 'direct', DPTRAIN_NATIVE_POOL_MB: ' 64 ' })).toEqual(
      { threads: 3, layout: 'any', convAlgorithm: 'direct', poolMaxBytes: 64 * 2 ** 20 },
    );
    expect(readNativeEnv({ DPTRAIN_NATIVE_THREADS: '1.5', DPTRAIN_NATIVE_LAYOUT: 'nchw', DPTRAIN_NATIVE_POOL_MB: '' })).toEqual({});
    expect(readNativeEnv({ DPTRAIN_NATIVE_POOL_MB: '0' }).poolMaxBytes).toBe(0);
    expect(readNativeEnv({ DPTRAIN_NATIVE_FILTER_COPIES: ' 4 ' }).filterCopies).toBe(4);
    expect(readNativeEnv({ DPTRAIN_NATIVE_FILTER_COPIES: '0' }).filterCopies).toBe(0);
  });

  it('refuses a DPTRAIN_NATIVE_FILTER_COPIES that is not a whole number, by name', () => {
    for (const bad of ['many', '-1', '1.5']) {
      expect(() => readNativeEnv({ DPTRAIN_NATIVE_FILTER_COPIES: bad })).toThrow(`DPTRAIN_NATIVE_FILTER_COPIES='${bad}' is not a whole number`);
    }
  });

  it('refuses a DPTRAIN_NATIVE_POOL_MB that is not a number of MiB, by name', () => {
    for (const bad of ['lots', '-1', 'Infinity']) {
      expect(() => readNativeEnv({ DPTRAIN_NATIVE_POOL_MB: bad })).toThrow(`DPTRAIN_NATIVE_POOL_MB='${bad}' is not a number of MiB`);
    }
  });
});

describe('OutputPool.setMaxBytes', () => {
  it('starts at 512 MiB and takes the bound registerNativeBackend applies', () => {
    const pool = new OutputPool({ minLength: 4 });
    expect(pool.maxBytes).toBe(512 * 2 ** 20);
    pool.setMaxBytes(0);
    expect(pool.maxBytes).toBe(0);
    expect(pool.getStats().freeBytes).toBe(0);
  });
});
