// `npx tsx bench/mobilenet-grad.ts native|wasm` — one MobileNetV2 (to out_relu) gradient step on a random batch of 2
// (all weights, inference-mode batch norm, loss mean(y^2)): best of 3 wall / CPU ms, then the top kernels by wall
// time (tf.profile). Run it once per backend, alternating, on a busy machine.
import * as tf from '@tensorflow/tfjs';
import { fileSystemHandler, resolveBackend } from '@dptrain/core';
const b = (process.argv[2] ?? 'native') as 'native' | 'wasm';
const info = await resolveBackend({ backend: b });
await tf.setBackend(info.tfBackend);
const full = await tf.loadLayersModel(fileSystemHandler(`${process.env.DPTRAIN_SHARED ?? '/work/shared'}/models/mobilenet_v2`));
const model = tf.model({ inputs: full.inputs, outputs: full.getLayer('out_relu').output as tf.SymbolicTensor });
const x = tf.randomUniform([2, 224, 224, 3]);
const step = () =>
  tf.tidy(() => {
    const { grads } = tf.variableGrads(() => (model.apply(x, { training: false }) as tf.Tensor).square().mean() as tf.Scalar);
    return Object.values(grads);
  });
tf.dispose(step());
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
let best = Infinity,
  bestCpu = Infinity;
for (let i = 0; i < 3; i++) {
  const t = performance.now();
  const c = cpu();
  tf.dispose(step());
  best = Math.min(best, performance.now() - t);
  bestCpu = Math.min(bestCpu, cpu() - c);
}
console.log(`${b}: gradient step batch 2 best of 3: ${best.toFixed(0)} ms wall, ${bestCpu.toFixed(0)} CPU ms`);
const t0 = performance.now();
const p = await tf.profile(() => step());
console.log(`grad step batch 2: ${(performance.now() - t0).toFixed(0)} ms (profiled)`);
const per = new Map<string, number>();
for (const k of p.kernels) per.set(k.name, (per.get(k.name) ?? 0) + (k.kernelTimeMs as number));
console.log(
  [...per]
    .sort((u, v) => v[1] - u[1])
    .slice(0, 16)
    .map(([n, ms]) => `${n} ${ms.toFixed(0)}`)
    .join(', '),
);
