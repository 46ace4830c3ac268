import { afterAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import {
  BACKEND_ORDER,
  DEFAULT_LOADERS,
  describeBackend,
  importPackage,
  resolveBackend,
  type BackendLoader,
  type BackendName,
} from '../../packages/core/src/backend/index.js';
import { DptrainError, isDptrainError } from '../../packages/core/src/errors.js';

const fail =
  (msg: string): BackendLoader =>
  async () => {
    throw new Error(msg);
  };
const cpuAs =
  (device: string): BackendLoader =>
  async () => {
    await tf.setBackend('cpu');
    return { tfBackend: 'cpu', device };
  };

/** Fakes for every backend; `calls` records the order they were tried in. */
function fakes(ok: Partial<Record<BackendName, boolean>>) {
  const calls: BackendName[] = [];
  const loaders = {} as Record<BackendName, BackendLoader>;
  for (const name of BACKEND_ORDER) {
    loaders[name] = async () => {
      calls.push(name);
      if (ok[name]) return cpuAs(`fake ${name}`)();
      throw new Error(`${name} says no`);
    };
  }
  return { loaders, calls };
}

async function rejection(p: Promise<unknown>): Promise<DptrainError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(DptrainError);
    return e as DptrainError;
  }
  throw new Error('expected a rejection');
}

afterAll(async () => {
  await tf.setBackend('cpu');
});

describe('resolveBackend: order and errors (injected loaders)', () => {
  it('tries tensorflow-gpu → tensorflow → native → wasm → cpu and stops at the first that loads', async () => {
    const { loaders, calls } = fakes({ wasm: true, cpu: true });
    const info = await resolveBackend({ loaders });
    expect(calls).toEqual(['tensorflow-gpu', 'tensorflow', 'native', 'wasm']);
    expect(info.name).toBe('wasm');
    expect(info.device).toBe('fake wasm');
    expect(info.tried.map((t) => t.name)).toEqual(['tensorflow-gpu', 'tensorflow', 'native']);
    expect(info.tried[2]!.error).toBe('native says no');
  });

  it('prefers native over wasm when it loads', async () => {
    const { loaders, calls } = fakes({ native: true, wasm: true });
    const info = await resolveBackend({ loaders, backend: 'auto' });
    expect(info.name).toBe('native');
    expect(calls).not.toContain('wasm');
  });

  it('throws one E_NO_BACKEND listing every backend and its reason when none loads', async () => {
    const { loaders, calls } = fakes({});
    const err = await rejection(resolveBackend({ loaders }));
    expect(err.code).toBe('E_NO_BACKEND');
    expect(calls).toEqual([...BACKEND_ORDER]);
    for (const name of BACKEND_ORDER) expect(err.message).toContain(`${name}: ${name} says no`);
    expect((err.details as { tried: unknown[] }).tried).toHaveLength(5);
  });

  it('a forced backend loads only that one', async () => {
    const { loaders, calls } = fakes({ 'tensorflow-gpu': true, cpu: true });
    const info = await resolveBackend({ loaders, backend: 'cpu' });
    expect(calls).toEqual(['cpu']);
    expect(info).toEqual({ name: 'cpu', tfBackend: 'cpu', device: 'fake cpu', tried: [] });
  });

  it('a forced backend that cannot load is E_BACKEND_UNAVAILABLE saying why', async () => {
    const loaders = { 'tensorflow-gpu': () => importPackage('@dptrain/no-such-package-xyz').then(() => ({ tfBackend: 'x', device: 'x' })) };
    const err = await rejection(resolveBackend({ loaders, backend: 'tensorflow-gpu' }));
    expect(err.code).toBe('E_BACKEND_UNAVAILABLE');
    expect(err.message).toContain("backend 'tensorflow-gpu' cannot load");
    expect(err.message).toContain('@dptrain/no-such-package-xyz is not installed');
  });

  it('no usable GPU: forced → E_BACKEND_NO_GPU; auto → recorded in tried and the next is used', async () => {
    const noGpu: BackendLoader = async () => {
      throw new DptrainError('E_BACKEND_NO_GPU', 'tfjs-node-gpu loaded but no GPU is usable, it would silently train on the CPU: found: none');
    };
    const forced = await rejection(resolveBackend({ loaders: { 'tensorflow-gpu': noGpu }, backend: 'tensorflow-gpu' }));
    expect(forced.code).toBe('E_BACKEND_NO_GPU');
    expect(forced.message).toContain('no GPU is usable');

    const { loaders } = fakes({ tensorflow: true });
    const info = await resolveBackend({ loaders: { ...loaders, 'tensorflow-gpu': noGpu } });
    expect(info.name).toBe('tensorflow');
    expect(info.tried).toHaveLength(1);
    expect(info.tried[0]!.error).toContain('no GPU is usable');
    expect(describeBackend(info)).toContain('tensorflow-gpu: no usable GPU');
  });

  it('rejects an unknown name with E_CONFIG', async () => {
    const err = await rejection(resolveBackend({ backend: 'tpu' as BackendName }));
    expect(err.code).toBe('E_CONFIG');
    expect(err.message).toContain('tensorflow-gpu, tensorflow, native, wasm, cpu');
  });

  it('describeBackend makes one line', () => {
    const line = describeBackend({
      name: 'wasm',
      tfBackend: 'wasm',
      device: 'cpu (wasm, SIMD, 1 thread)',
      tried: [
        { name: 'tensorflow-gpu', error: '@tensorflow/tfjs-node-gpu is not installed: Cannot find package' },
        { name: 'native', error: '@dptrain/backend-native is unavailable: libdnnl not found' },
      ],
    });
    expect(line).toBe(
      'backend: wasm on cpu (wasm, SIMD, 1 thread); tried: tensorflow-gpu: not installed, native: @dptrain/backend-native is unavailable: libdnnl not found',
    );
    expect(line).not.toContain('\n');
  });
});

describe('resolveBackend: real loaders', () => {
  it('forced wasm loads for real, with the training kernels registered', async () => {
    const info = await resolveBackend({ backend: 'wasm' });
    expect(info.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(info.device).toMatch(/wasm.*1 thread/);
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
    // a real conv weight gradient runs on wasm
    const x = tf.ones([1, 4, 4, 2]) as tf.Tensor4D;
    const w = tf.variable(tf.ones([3, 3, 2, 1]));
    const { grads } = tf.variableGrads(() => tf.sum(tf.conv2d(x, w as tf.Tensor4D, 1, 'same')), [w]);
    const g = await grads[w.name]!.data();
    expect(g[8]).toBe(16); // centre tap (1, 1, ci 0) sees all 16 pixels, 1·1 each
    expect(g[0]).toBe(9); // corner tap (0, 0) sees the 3x3 pixels not cut off by the padding
    tf.dispose([x, w, grads[w.name]!]);
  });

  it('forced cpu loads for real', async () => {
    const info = await resolveBackend({ backend: 'cpu' });
    expect(info).toMatchObject({ name: 'cpu', tfBackend: 'cpu', tried: [] });
    expect(tf.getBackend()).toBe('cpu');
  });

  it('auto with the real loaders: tried is the prefix of the order before the chosen one', async () => {
    // native is faked out so the test does not depend on another package's build.
    const info = await resolveBackend({ loaders: { native: fail('native not built (test)') } });
    const idx = BACKEND_ORDER.indexOf(info.name);
    expect(info.tried.map((t) => t.name)).toEqual(BACKEND_ORDER.slice(0, idx));
    expect(tf.getBackend()).toBe(info.tfBackend);
    expect(info.tried.find((t) => t.name === 'native')?.error).toBe('native not built (test)');
  });

  it('forced tensorflow-gpu where tfjs-node-gpu is absent says it is not installed', async (ctx) => {
    let installed = true;
    try {
      await import(/* @vite-ignore */ ['@tensorflow', 'tfjs-node-gpu'].join('/'));
    } catch {
      installed = false;
    }
    if (installed) ctx.skip();
    const err = await rejection(resolveBackend({ backend: 'tensorflow-gpu' }));
    expect(isDptrainError(err, 'E_BACKEND_UNAVAILABLE')).toBe(true);
    expect(err.message).toContain('@tensorflow/tfjs-node-gpu is not installed');
    expect(DEFAULT_LOADERS['tensorflow-gpu']).toBeTypeOf('function');
  });
});
