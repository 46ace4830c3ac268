// `npx tsx bench/mobilenet-forward.ts [--batch 8] [--runs 3] [--rounds 2] [--backends native,wasm] [--profile]`
// MobileNetV2 (/work/shared/models/mobilenet_v2, cut at out_relu) forward on a random 224x224 batch, ms per image,
// per backend, alternating backends in one process so a busy machine affects each alike. --profile prints the
// time per kernel (tf.profile, wall ms summed over one forward) on each backend.
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
  console.log(`${b}: ${info.device}`);
}

async function forwardMs(b: BenchBackend): Promise<number> {
  await tf.setBackend(tfName.get(b)!);
  const full = await tf.loadLayersModel(fileSystemHandler(a.model!));
  // The stored model carries a classification head: time the backbone only, up to out_relu.
  const model = tf.model({ inputs: full.inputs, outputs: full.getLayer('out_relu').output as tf.SymbolicTensor });
  const x = tf.randomUniform([batch, 224, 224, 3]);
  const once = async () => {
    const t0 = performance.now();
    const y = model.predict(x) as tf.Tensor;
    await y.data();
    y.dispose();
    return performance.now() - t0;
  };
  await once(); // warm-up (weights upload, primitive creation)
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
  x.dispose();
  full.dispose();
  return Math.min(...times);
}

const best = new Map<BenchBackend, number[]>();
for (let r = 0; r < Number(a.rounds); r++) {
  for (const b of backends) {
    const ms = await forwardMs(b);
    best.set(b, [...(best.get(b) ?? []), ms / batch]);
    console.log(`round ${r + 1} ${b}: ${(ms / batch).toFixed(1)} ms/img (best of ${runs}, batch ${batch})`);
  }
}
for (const [b, v] of best) console.log(`${b}: best ${Math.min(...v).toFixed(1)} ms/img over ${v.length} rounds`);
