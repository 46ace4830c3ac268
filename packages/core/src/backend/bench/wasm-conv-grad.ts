/**
 * Micro-benchmark (run by hand, not a test) of the wasm training kernels on VGG16's block5 at 150 px:
 * input 8x9x9x512, conv 3x3 512 'same'. Prints the median time and GFLOP/s of the forward Conv2D
 * (reference), our Conv2DBackpropFilter, our Conv2DBackpropInput and wasm's own Conv2DBackpropInput.
 *
 *   npx tsx packages/core/src/backend/bench/wasm-conv-grad.ts [--reps 7] [--batch 8] [--size 9] [--channels 512]
 *
 * The machine is shared: compare figures from the same run only.
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { activateWasm } from '../wasm.js';

// wasm's own Conv2DBackpropInput, captured before registerWasmTrainingKernels replaces it.
const wasmOwnBackpropInput = tf.getKernel('Conv2DBackpropInput', 'wasm');

const { values } = parseArgs({
  options: {
    reps: { type: 'string', default: '7' },
    batch: { type: 'string', default: '8' },
    size: { type: 'string', default: '9' },
    channels: { type: 'string', default: '512' },
  },
});
const reps = Number(values.reps);
const n = Number(values.batch);
const hw = Number(values.size);
const c = Number(values.channels);

/** Times every row `reps` times, round-robin (so load changes on a shared machine hit all rows alike). */
function timeRows(rows: [string, () => void][]): { median: number; min: number }[] {
  for (const [, fn] of rows) fn(); // warm-up (XNNPACK operator creation, allocations)
  const ts: number[][] = rows.map(() => []);
  for (let i = 0; i < reps; i++) {
    rows.forEach(([, fn], r) => {
      const t0 = performance.now();
      fn();
      ts[r]!.push(performance.now() - t0);
    });
  }
  return ts.map((t) => {
    t.sort((a, b) => a - b);
    return { median: t[Math.floor(t.length / 2)]!, min: t[0]! };
  });
}

async function main(): Promise<void> {
  const device = await activateWasm();
  const x = tf.randomNormal([n, hw, hw, c]) as tf.Tensor4D;
  const w = tf.randomNormal([3, 3, c, c]) as tf.Tensor4D;
  const dy = tf.randomNormal([n, hw, hw, c]) as tf.Tensor4D;
  const flops = 2 * n * hw * hw * 9 * c * c;
  const attrsBase = { strides: [1, 1], pad: 'same', dataFormat: 'NHWC' };
  const run = (name: string, inputs: tf.NamedTensorMap, attrs: object) => () => {
    const out = tf.engine().runKernel(name, inputs, attrs as tf.NamedAttrMap) as tf.Tensor;
    out.dataSync();
    out.dispose();
  };
  const rows: [string, () => void][] = [
    ['Conv2D forward (wasm, reference)', () => tf.tidy(() => void tf.conv2d(x, w, 1, 'same').dataSync())],
    ['Conv2DBackpropFilter (dptrain, via wasm Conv2D)', run('Conv2DBackpropFilter', { x, dy }, { ...attrsBase, filterShape: [3, 3, c, c] })],
    ['Conv2DBackpropInput (dptrain, via wasm Conv2D)', run('Conv2DBackpropInput', { dy, filter: w }, { ...attrsBase, inputShape: [n, hw, hw, c] })],
  ];
  if (wasmOwnBackpropInput) {
    // Its setupFunc never ran if it was unregistered before the backend started.
    wasmOwnBackpropInput.setupFunc?.(tf.backend());
    rows.push([
      "Conv2DBackpropInput (wasm's own loop)",
      () => {
        const backend = tf.backend();
        const out = wasmOwnBackpropInput.kernelFunc({
          inputs: { dy, filter: w },
          attrs: { ...attrsBase, inputShape: [n, hw, hw, c] } as unknown as tf.NamedAttrMap,
          backend,
        }) as tf.TensorInfo;
        backend.readSync(out.dataId);
        backend.disposeData(out.dataId);
      },
    ]);
  }
  console.log(`wasm conv gradients, x ${n}x${hw}x${hw}x${c}, 3x3x${c}x${c} 'same' (${(flops / 1e9).toFixed(2)} GFLOP each), ${device}, ${reps} reps`);
  const times = timeRows(rows);
  rows.forEach(([label], r) => {
    const t = times[r]!;
    console.log(
      `${label.padEnd(48)} median ${t.median.toFixed(1).padStart(7)} ms  min ${t.min.toFixed(1).padStart(7)} ms  ${(flops / 1e6 / t.median).toFixed(1).padStart(5)} GFLOP/s`,
    );
  });
  tf.dispose([x, w, dy]);
}

await main();
