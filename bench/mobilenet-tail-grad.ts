// `npx tsx bench/mobilenet-tail-grad.ts [THREADS] [BOUNDARY]` — the step that MobileNetV2's fine-tune phase runs:
// one gradient of the layers after BOUNDARY (default block_13_project_BN, the generic unfreeze point block_14) up to
// out_relu, from cached-feature-shaped random inputs, batch 8 (the micro-batch), on the native backend with THREADS
// oneDNN threads (default 2). Prints the mean wall and CPU ms of 10 steps, and with DPTRAIN_NATIVE_PROFILE=1 the CPU
// ms per native kernel (x calls per step).
import * as tf from '@tensorflow/tfjs';
import { fileSystemHandler, resolveBackend, buildTail } from '@dptrain/core';
import { nativeKernelStats, resetNativeKernelStats, setNativeThreads } from '@dptrain/backend-native';
const threads = Number(process.argv[2] ?? 2);
const boundary = process.argv[3] ?? 'block_13_project_BN';
const info = await resolveBackend({ backend: 'native' });
await tf.setBackend(info.tfBackend);
setNativeThreads(threads);
const full = await tf.loadLayersModel(fileSystemHandler('/work/shared/models/mobilenet_v2'));
const tail = buildTail(full, boundary, 'out_relu', 'tail');
const shape = tail.inputs[0]!.shape.slice(1) as number[];
const x = tf.randomUniform([8, ...shape]);
const step = () =>
  tf.tidy(() => Object.values(tf.variableGrads(() => (tail.apply(x, { training: false }) as tf.Tensor).mean([1, 2]).square().mean() as tf.Scalar).grads));
tf.dispose(step());
resetNativeKernelStats();
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const n = 10;
const t = performance.now();
const c = cpu();
for (let i = 0; i < n; i++) tf.dispose(step());
console.log(`threads ${threads} ${boundary}: ${((performance.now() - t) / n).toFixed(1)} ms wall, ${((cpu() - c) / n).toFixed(1)} CPU ms per batch-8 step`);
const s = Object.entries(nativeKernelStats())
  .filter(([, v]) => v.cpuMs)
  .sort((a, b) => b[1].cpuMs! - a[1].cpuMs!);
console.log(
  s
    .slice(0, 40)
    .map(([k, v]) => `${k} ${(v.cpuMs! / n).toFixed(1)}x${v.native / n}`)
    .join(', '),
);
