import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { NATIVE_BACKEND_NAME } from './backend.js';
import { OutputPool, outputPool, type PooledBackend } from './output-pool.js';
import { registerNativeBackend } from './index.js';
import { nativeOrSkipReason, prng, randomData } from './native-backend.testutil.js';

const skipReason = await nativeOrSkipReason();

/** The native backend's storage of a tensor (the array its kernels wrote). */
function storage(t: tf.Tensor): Float32Array {
  const b = tf.engine().backend as unknown as { data: { get(id: object): { values: Float32Array } } };
  return b.data.get(t.dataId).values;
}

describe.skipIf(skipReason !== null)('native output pool: big kernel outputs are recycled, never while visible', () => {
  const r = prng(5);
  const x = randomData(r, [2, 16, 16, 32]); // conv output 2*16*16*32 = 16384 floats: pooled
  const f = randomData(r, [3, 3, 32, 32]);
  let xt: tf.Tensor4D;
  let ft: tf.Tensor4D;
  const conv = () => tf.conv2d(xt, ft, 1, 'same');

  beforeAll(async () => {
    await tf.setBackend(NATIVE_BACKEND_NAME);
    xt = tf.tensor4d(x.data, x.shape as [number, number, number, number]);
    ft = tf.tensor4d(f.data, f.shape as [number, number, number, number]);
  });

  it('hands a disposed output array to the next kernel of that size, with the right values', async () => {
    const first = conv();
    const want = Float32Array.from(storage(first)); // a copy: the reference values
    const firstArray = storage(first);
    first.dispose();
    const before = outputPool.getStats();
    const second = conv();
    expect(storage(second)).toBe(firstArray); // the same memory again
    expect(outputPool.getStats().reused).toBe(before.reused + 1);
    expect(Array.from(await second.data())).toEqual(Array.from(want));
    second.dispose();
  });

  it('never recycles an array that dataSync() handed out', () => {
    const t = conv();
    const seen = t.dataSync() as Float32Array;
    const copy = Float32Array.from(seen);
    const exposed = outputPool.getStats().exposed;
    t.dispose();
    expect(outputPool.getStats().exposed).toBe(exposed + 1);
    const others = [0, 1, 2].map(() => tf.tidy(() => conv().mul(-3)));
    expect(Array.from(seen)).toEqual(Array.from(copy)); // still the caller's values
    for (const o of others) expect(storage(o)).not.toBe(seen);
    others.forEach((o) => o.dispose());
  });

  it('never recycles an array another tensor views', () => {
    const t = conv();
    const values = storage(t);
    // as a cpu kernel would return a view: a second tensor over part of the same memory
    const info = (tf.engine().backend as unknown as { makeTensorInfo(s: number[], d: 'float32', v: Float32Array): tf.TensorInfo }).makeTensorInfo(
      [100],
      'float32',
      values.subarray(50, 150),
    );
    const view = tf.engine().makeTensorFromTensorInfo(info);
    const copy = Float32Array.from(values.subarray(50, 150));
    t.dispose();
    const others = [0, 1, 2].map(() => conv());
    expect(Array.from(view.dataSync())).toEqual(Array.from(copy));
    for (const o of others) expect(storage(o)).not.toBe(values);
    others.forEach((o) => o.dispose());
    view.dispose();
  });

  it("readInto (core's readTensorInto) copies the values out and leaves the array recyclable", () => {
    const t = conv();
    const dst = new Float32Array(t.size + 3);
    expect((tf.engine().backend as unknown as PooledBackend).readInto!(t.dataId, dst, 3)).toBe(true);
    expect(Array.from(dst.subarray(3))).toEqual(Array.from(storage(t)));
    const recycled = outputPool.getStats().recycled;
    t.dispose();
    expect(outputPool.getStats().recycled).toBe(recycled + 1);
  });

  it('keeps the tensor count flat over repeated steps', () => {
    const step = () =>
      tf.tidy(() =>
        tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf
            .conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same')
            .relu()
            .sum(),
        )([xt, ft]),
      );
    step().forEach((g) => g.dispose());
    const n = tf.memory().numTensors;
    const allocated = outputPool.getStats().allocated;
    for (let i = 0; i < 5; i++) step().forEach((g) => g.dispose());
    expect(tf.memory().numTensors).toBe(n);
    expect(outputPool.getStats().allocated).toBe(allocated); // every big array of steps 2..6 came from the pool
  });
});

describe.skipIf(skipReason !== null)('native backend settings from the environment', () => {
  for (const [name, value, message] of [
    ['DPTRAIN_NATIVE_POOL_MB', 'lots', /DPTRAIN_NATIVE_POOL_MB='lots' is not a number of MiB/],
    ['DPTRAIN_NATIVE_CONV', 'fft', /convolution algorithm 'fft' \(DPTRAIN_NATIVE_CONV\) is not 'winograd' or 'direct'/],
  ] as const) {
    it(`rejects ${name}=${value} by name`, async () => {
      const saved = process.env[name];
      process.env[name] = value;
      try {
        await expect(registerNativeBackend()).rejects.toThrow(message);
      } finally {
        if (saved === undefined) delete process.env[name];
        else process.env[name] = saved;
      }
    });
  }
});

/** A minimal cpu-backend-shaped store for the pool's own bookkeeping. */
function fakeBackend(): PooledBackend & { entries: Map<object, { values?: unknown; refCount: number }> } {
  const data = new Map<object, { values?: unknown; refCount: number }>();
  return {
    data: { has: (id) => data.has(id), get: (id) => data.get(id)! },
    entries: data,
    write(values) {
      const id = {};
      data.set(id, { values, refCount: 1 });
      return id;
    },
    move(id, values, _s, _d, refCount) {
      data.set(id, { values, refCount });
    },
    readSync(id) {
      return data.get(id)!.values;
    },
    disposeData(id, force) {
      const e = data.get(id);
      if (!e) return true;
      if (--e.refCount > 0 && !force) return false;
      data.delete(id);
      return true;
    },
  };
}

describe('OutputPool bookkeeping', () => {
  it('keeps at most maxBytes of free arrays, dropping other sizes first', () => {
    const pool = new OutputPool({ maxBytes: 3 * 4096 * 4, minLength: 4096 });
    const b = fakeBackend();
    pool.attach(b);
    const ids = [4096, 4096, 8192].map((n) => b.write(pool.take(n), [n], 'float32'));
    ids.forEach((id) => b.disposeData(id));
    // 2 x 16 KiB + 32 KiB would be 64 KiB > 48 KiB: one 16 KiB array went
    expect(pool.getStats().freeBytes).toBeLessThanOrEqual(3 * 4096 * 4);
    expect(pool.getStats().recycled).toBe(3);
    const before = pool.getStats().reused;
    pool.take(8192);
    expect(pool.getStats().reused).toBe(before + 1);
  });

  it('does not recycle a shared dataId until its last reference goes, nor small arrays', () => {
    const pool = new OutputPool({ maxBytes: 1 << 20 });
    const b = fakeBackend();
    pool.attach(b);
    const id = b.write(pool.take(5000), [5000], 'float32');
    b.entries.get(id)!.refCount++; // incRef: a reshape of it
    b.disposeData(id);
    expect(pool.getStats().recycled).toBe(0);
    b.disposeData(id);
    expect(pool.getStats().recycled).toBe(1);
    b.disposeData(b.write(pool.take(100), [100], 'float32'));
    expect(pool.getStats().recycled).toBe(1);
  });

  it('with maxBytes 0 hands out new arrays and keeps none', () => {
    const pool = new OutputPool({ maxBytes: 0 });
    const b = fakeBackend();
    pool.attach(b);
    const a = pool.take(5000);
    b.disposeData(b.write(a, [5000], 'float32'));
    expect(pool.take(5000)).not.toBe(a);
    expect(pool.getStats()).toMatchObject({ recycled: 0, reused: 0, freeBytes: 0 });
  });
});
