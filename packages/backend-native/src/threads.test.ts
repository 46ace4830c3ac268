import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { loadAddon } from './addon.js';
import { NATIVE_BACKEND_NAME } from './backend.js';
import { setNativePrecision, setNativeThreads } from './index.js';
import { nativeOrSkipReason, prng, randomData } from './native-backend.testutil.js';

/**
 * The cluster's averaging tree needs a micro-batch's gradient to have the same bits in a worker with 1 oneDNN
 * thread and in `dptrain train` with all cores. These are the training kernels of the VGG16 block5 and
 * MobileNetV2 fine-tune steps (real shapes, batch 8), each run with fresh primitives on 1 and on 2 threads, in fp32
 * and (where the CPU has AVX512-BF16 or AMX) in bf16.
 */
const skipReason = await nativeOrSkipReason();
const before = skipReason === null ? loadAddon().getNumThreads() : 1;
const precisions = skipReason === null && loadAddon().info().bf16Isa !== '' ? (['fp32', 'bf16'] as const) : (['fp32'] as const);
afterAll(() => {
  if (skipReason === null) {
    setNativeThreads(before);
    setNativePrecision('fp32');
    loadAddon().clearCache();
  }
});

type Case = { name: string; inputs: number[][]; fn: (...xs: tf.Tensor[]) => tf.Tensor[] };
const conv = (x: tf.Tensor, w: tf.Tensor) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same');
const dw = (x: tf.Tensor, w: tf.Tensor) => tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same');
const cases: Case[] = [
  {
    name: 'VGG16 block5 conv 3x3 512->512 at 9x9: filter and input gradients',
    inputs: [
      [8, 9, 9, 512],
      [3, 3, 512, 512],
      [8, 9, 9, 512],
    ],
    fn: (x, w, dy) => tf.grads((a: tf.Tensor, b: tf.Tensor) => conv(a, b).mul(dy!).sum())([x!, w!]),
  },
  {
    name: 'MobileNetV2 1x1 expand 160->960 at 7x7: filter and input gradients',
    inputs: [
      [8, 7, 7, 160],
      [1, 1, 160, 960],
      [8, 7, 7, 960],
    ],
    fn: (x, w, dy) => tf.grads((a: tf.Tensor, b: tf.Tensor) => conv(a, b).mul(dy!).sum())([x!, w!]),
  },
  {
    name: 'MobileNetV2 depthwise 3x3 x960 at 7x7: filter and input gradients',
    inputs: [
      [8, 7, 7, 960],
      [3, 3, 960, 1],
      [8, 7, 7, 960],
    ],
    fn: (x, w, dy) => tf.grads((a: tf.Tensor, b: tf.Tensor) => dw(a, b).mul(dy!).sum())([x!, w!]),
  },
  {
    name: 'head matmul 8x1280 @ 1280x256: both gradients',
    inputs: [
      [8, 1280],
      [1280, 256],
      [8, 256],
    ],
    fn: (a, b, dz) =>
      tf.grads((x: tf.Tensor, y: tf.Tensor) =>
        tf
          .matMul(x as tf.Tensor2D, y as tf.Tensor2D)
          .mul(dz!)
          .sum(),
      )([a!, b!]),
  },
];

describe.skipIf(skipReason !== null)('native kernels give the same bits on 1 and 2 threads', () => {
  it.each(precisions.flatMap((p) => cases.map((c) => [p, c.name, c] as const)))(
    '%s: %s',
    async (precision, _name, c) => {
      await tf.setBackend(NATIVE_BACKEND_NAME);
      setNativePrecision(precision);
      const rand = prng(11);
      const data = c.inputs.map((shape) => randomData(rand, shape));
      const run = (threads: number): Float32Array[] => {
        setNativeThreads(threads);
        loadAddon().clearCache(); // primitives are sized for the thread count when created
        return tf.tidy(() => c.fn(...data.map((d) => tf.tensor(d.data, d.shape))).map((t) => t.dataSync() as Float32Array));
      };
      const one = run(1);
      // let vitest's worker answer its runner between the two synchronous halves (minutes each on a loaded machine)
      await new Promise((resolve) => setImmediate(resolve));
      const two = run(2);
      expect(two.length).toBe(one.length);
      one.forEach((a, i) => {
        expect(a.some((v) => v !== 0)).toBe(true);
        expect(Buffer.from(two[i]!.buffer).equals(Buffer.from(a.buffer)), `output ${i}`).toBe(true);
      });
      // the block5 case is ~25 GFLOP on each thread count: minutes on a loaded 2-core machine (it must not depend on speed)
    },
    900_000,
  );
});
