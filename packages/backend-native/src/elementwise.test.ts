import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { nativeKernelStats } from './backend.js';
import { nativeOrSkipReason, onBoth, prng, randomData, relErr } from './native-backend.testutil.js';

const skipReason = await nativeOrSkipReason();

describe.skipIf(skipReason !== null)('native elementwise and reduction kernels vs tfjs cpu', () => {
  const r = prng(3);
  const pairs: [string, number[], number[]][] = [
    ['same shape', [4, 5, 6, 7], [4, 5, 6, 7]],
    ['scalar right', [3, 5], []],
    ['scalar left', [1], [6, 4]],
    ['bias [C]', [2, 3, 3, 8], [8]],
    ['bias left', [8], [5, 8]],
    ['GAP gradient [N,1,1,C]', [3, 1, 1, 5], [3, 4, 4, 5]],
    ['outer product [H,1]x[1,W]', [6, 1], [1, 7]],
  ];
  const ops: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor][] = [
    ['add', tf.add],
    ['sub', tf.sub],
    ['mul', tf.mul],
    ['div', tf.div],
  ];
  for (const [opName, op] of ops) {
    it.each(pairs)(`${opName}: %s`, async (_l, sa, sb) => {
      const a = randomData(r, sa);
      const b = randomData(r, sb);
      if (opName === 'div') for (let i = 0; i < b.data.length; i++) b.data[i] = b.data[i]! + (b.data[i]! >= 0 ? 0.5 : -0.5);
      const { cpu, native } = await onBoth([a, b], (x, y) => op(x!, y!));
      expect(relErr(native[0]!, cpu[0]!)).toBeLessThan(1e-6);
    });
  }

  it('relu and step (relu gradient), NaN propagates', async () => {
    const x = randomData(r, [5, 7, 3]);
    x.data[3] = NaN;
    x.data[4] = 0;
    const { cpu, native } = await onBoth([x], (t) => [tf.relu(t!), tf.step(t!), tf.step(t!, 0.25), tf.grad((u: tf.Tensor) => tf.relu(u).sum())(t!)]);
    for (let i = 0; i < 4; i++) {
      expect(Number.isNaN(native[i]![3])).toBe(Number.isNaN(cpu[i]![3]));
      native[i]![3] = 0;
      cpu[i]![3] = 0;
      expect(relErr(native[i]!, cpu[i]!), `output ${i}`).toBeLessThan(1e-7);
    }
  });

  const reductions: [string, number[], number | number[], boolean][] = [
    ['bias gradient: axes 0..2', [9, 4, 5, 6], [0, 1, 2], false],
    ['GAP: axes 1,2', [3, 4, 5, 6], [1, 2], false],
    ['GAP keepDims', [3, 4, 5, 6], [1, 2], true],
    ['last axis', [4, 33], -1, false],
    ['all axes', [4, 5, 6], [0, 1, 2], false],
    ['non-contiguous axes (cpu fallback)', [3, 4, 5], [0, 2], false],
  ];
  it.each(reductions)('sum and mean: %s', async (_l, shape, axis, keepDims) => {
    const x = randomData(r, shape);
    const { cpu, native } = await onBoth([x], (t) => [tf.sum(t!, axis, keepDims), tf.mean(t!, axis, keepDims)]);
    expect(relErr(native[0]!, cpu[0]!)).toBeLessThan(1e-5);
    expect(relErr(native[1]!, cpu[1]!)).toBeLessThan(1e-5);
  });

  it('served them natively (int32 falls back to cpu)', async () => {
    await tf.setBackend('dptrain-native');
    const before = nativeKernelStats().Add?.fallback ?? 0;
    const y = tf.add(tf.tensor1d([1, 2], 'int32'), tf.tensor1d([3, 4], 'int32'));
    expect(Array.from(await y.data())).toEqual([4, 6]);
    expect(y.dtype).toBe('int32');
    expect(nativeKernelStats().Add?.fallback).toBe(before + 1);
    const s = nativeKernelStats();
    for (const k of ['Add', 'Sub', 'Multiply', 'RealDiv', 'Relu', 'Step', 'Sum', 'Mean']) expect(s[k]?.native, k).toBeGreaterThan(0);
  });
});
