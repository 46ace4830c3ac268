/**
 * Hand-run benchmark (not a test): one VGG16 fine-tune step on wasm from cached block4_pool features —
 * block5 (3x conv 3x3 512 relu, max-pool) + head (GAP, Dense 256 relu, Dropout 0.5, Dense 6 softmax),
 * batch 8 at 150 px input (features 8x9x9x512), Adam. Run once with dptrain's kernels and once with
 * wasm's own Conv2DBackpropInput put back, interleaved.
 *
 *   npx tsx packages/core/src/backend/bench/wasm-block5-step.ts [--steps 5] [--batch 8]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { activateWasm } from '../wasm.js';
import { WASM_TRAINING_KERNELS } from '../kernels/register.js';

const wasmOwnBackpropInput = tf.getKernel('Conv2DBackpropInput', 'wasm');
const ours = WASM_TRAINING_KERNELS.find((k) => k.kernelName === 'Conv2DBackpropInput')!;

const { values } = parseArgs({ options: { steps: { type: 'string', default: '5' }, batch: { type: 'string', default: '8' } } });
const steps = Number(values.steps);
const batch = Number(values.batch);

function block5(): tf.LayersModel {
  const conv = (name: string, inputShape?: number[]) =>
    tf.layers.conv2d({ name, filters: 512, kernelSize: 3, padding: 'same', activation: 'relu', ...(inputShape ? { inputShape } : {}) });
  return tf.sequential({
    layers: [
      conv('block5_conv1', [9, 9, 512]),
      conv('block5_conv2'),
      conv('block5_conv3'),
      tf.layers.maxPooling2d({ name: 'block5_pool', poolSize: 2, strides: 2 }),
      tf.layers.globalAveragePooling2d({}),
      tf.layers.dense({ units: 256, activation: 'relu' }),
      tf.layers.dropout({ rate: 0.5 }),
      tf.layers.dense({ units: 6, activation: 'softmax' }),
    ],
  });
}

function useKernel(which: 'dptrain' | 'wasm'): void {
  tf.unregisterKernel('Conv2DBackpropInput', 'wasm');
  if (which === 'dptrain') tf.registerKernel({ kernelName: 'Conv2DBackpropInput', backendName: 'wasm', kernelFunc: ours.kernelFunc });
  else {
    wasmOwnBackpropInput!.setupFunc?.(tf.backend());
    tf.registerKernel(wasmOwnBackpropInput!);
  }
}

async function main(): Promise<void> {
  const device = await activateWasm();
  const model = block5();
  model.compile({ optimizer: tf.train.adam(1e-5), loss: 'categoricalCrossentropy' });
  const x = tf.randomNormal([batch, 9, 9, 512]);
  const y = tf.oneHot(
    tf.tensor1d(
      Array.from({ length: batch }, (_, i) => i % 6),
      'int32',
    ),
    6,
  );
  const variants = wasmOwnBackpropInput ? (['dptrain', 'wasm'] as const) : (['dptrain'] as const);
  const times: Record<string, number[]> = {};
  for (const v of variants) {
    useKernel(v);
    await model.trainOnBatch(x, y); // warm-up
    times[v] = [];
  }
  for (let s = 0; s < steps; s++) {
    for (const v of variants) {
      useKernel(v);
      const t0 = performance.now();
      await model.trainOnBatch(x, y);
      times[v]!.push(performance.now() - t0);
    }
  }
  useKernel('dptrain');
  console.log(`VGG16 block5 + head train step from block4_pool features, batch ${batch}, ${device}, ${steps} steps`);
  for (const v of variants) {
    const t = [...times[v]!].sort((a, b) => a - b);
    const med = t[Math.floor(t.length / 2)]!;
    console.log(`${`Conv2DBackpropInput: ${v}`.padEnd(30)} median ${med.toFixed(0).padStart(6)} ms/step  ${((batch * 1000) / med).toFixed(2)} img/s`);
  }
  tf.dispose([x, y]);
  model.dispose();
}

await main();
