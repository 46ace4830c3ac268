// `npx tsx bench/mobilenet-forward.ts [--batch 8] [--runs 3] [--rounds 2] [--backends native,wasm] [--precision fp32|bf16] [--profile]`
// MobileNetV2 (/work/shared/models/mobilenet_v2, cut at out_relu) forward on a random 224x224 batch, ms per image,
// per backend, alternating backends in one process so a busy machine affects each alike. --profile prints the
// time per kernel (tf.profile, wall ms summed over one forward) on each backend. --precision bf16: the native backend's
// bf16 kernels (the other backends stay fp32).
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { fileSystemHandler } from '@dptrain/core';
import { useBackend, type BenchBackend } from './backends.js';

const { values: a } = parseArgs({
  options: {
    batch: { type: 'string', default: '8' },
    runs: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '2' },
    backends: { type: 'string', default: 'native,wasm' },
    model: { type: 'string', default: path.resolve(process.env.DPTRAIN_SHARED ?? '/work/shared', 'models/mobilenet_v2') },
    precision: { type: 'string', default: 'fp32' },
    profile: { type: 'boolean', default: false },
  },
});
const batch = Number(a.batch);
const runs = Number(a.runs);
const backends = a.backends!.split(',') as BenchBackend[];
const tfName = new Map<BenchBackend, string>();
for (const b of backends) {
  const info = await useBackend(b);
  tfName.set(b, info.tfBackend);
  if (b === 'native') {
    const { setNativePrecision } = await import('@dptrain/backend-native');
    setNativePrecision(a.precision === 'bf16' ? 'bf16' : 'fp32');
  }
  console.log(`${b}: ${info.device}${b === 'native' ? `, ${a.precision}` : ''}`);
}

// The same 2-image input on every backend: their out_relu outputs are compared at the end.
const checkData = tf.tidy(() => tf.randomUniform([2, 224, 224, 3], 0, 1, 'float32', 7).dataSync() as Float32Array);
const outputs = new Map<BenchBackend, Float32Array>();

async function forwardMs(b: BenchBackend): Promise<{ wall: number; cpu: number }> {
  await tf.setBackend(tfName.get(b)!);
  const full = await tf.loadLayersModel(fileSystemHandler(a.model!));
  // The stored model carries a classification head: time the backbone only, up to out_relu.
  const model = tf.model({ inputs: full.inputs, outputs: full.getLayer('out_relu').output as tf.SymbolicTensor });
  const x = tf.randomUniform([batch, 224, 224, 3]);
  const check = tf.tensor4d(checkData, [2, 224, 224, 3]);
  const cpuMs = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  let bestCpu = Infinity;
  const once = async () => {
    const t0 = performance.now();
    const c0 = cpuMs();
    const y = model.predict(x) as tf.Tensor;
    await y.data();
    y.dispose();
    bestCpu = Math.min(bestCpu, cpuMs() - c0);
    return performance.now() - t0;
  };
  await once(); // warm-up (weights upload, primitive creation)
  bestCpu = Infinity;
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push(await once());
  if (a.profile) {
    const p = await tf.profile(() => tf.tidy(() => model.predict(x) as tf.Tensor));
    const per = new Map<string, number>();
    for (const k of p.kernels) per.set(k.name, (per.get(k.name) ?? 0) + (k.kernelTimeMs as number));
    const rows = [...per].sort((u, v) => v[1] - u[1]).slice(0, 12);
    console.log(`${b} kernel wall ms per forward (batch ${batch}): ${rows.map(([n, ms]) => `${n} ${ms.toFixed(0)}`).join(', ')}`);
    tf.dispose(p.result as tf.Tensor);
  }
  if (!outputs.has(b)) {
    const y = model.predict(check) as tf.Tensor;
    outputs.set(b, (await y.data()) as Float32Array);
    y.dispose();
  }
  x.dispose();
  check.dispose();
  full.dispose();
  return { wall: Math.min(...times), cpu: bestCpu };
}

// Wall ms per image, and process CPU ms per image (all threads; less sensitive to other load on the machine).
const best = new Map<BenchBackend, { wall: number[]; cpu: number[] }>();
for (let r = 0; r < Number(a.rounds); r++) {
  for (const b of backends) {
    const { wall, cpu } = await forwardMs(b);
    const e = best.get(b) ?? { wall: [], cpu: [] };
    e.wall.push(wall / batch);
    e.cpu.push(cpu / batch);
    best.set(b, e);
    console.log(`round ${r + 1} ${b}: ${(wall / batch).toFixed(1)} ms/img wall, ${(cpu / batch).toFixed(1)} CPU ms/img (best of ${runs}, batch ${batch})`);
  }
}
for (const [b, v] of best) {
  console.log(`${b}: best ${Math.min(...v.wall).toFixed(1)} ms/img wall, ${Math.min(...v.cpu).toFixed(1)} CPU ms/img over ${v.wall.length} rounds`);
}
const [first, ...rest] = [...outputs];
for (const [b, o] of rest) {
  let err = 0;
  let scale = 1;
  for (let i = 0; i < o.length; i++) {
    err = Math.max(err, Math.abs(o[i]! - first![1][i]!));
    scale = Math.max(scale, Math.abs(first![1][i]!));
  }
  console.log(`out_relu max |${b} - ${first![0]}| / max(1, |${first![0]}|) = ${(err / scale).toExponential(2)}`);
}
