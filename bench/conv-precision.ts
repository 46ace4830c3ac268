// `npx tsx bench/conv-precision.ts [--model DIR] [--batch 8] [--reps 5] [--backward]`
// Every convolution of a tfjs layers model (default: the shared MobileNetV2), at its own shape with batch 8, timed
// on one thread through the native addon in fp32 and in bf16 (forward; --backward adds both gradients), with its
// direct-convolution FLOPs. It measures where bf16 pays and where it loses to the reorders around the call: the
// data behind the native backend's bf16 policy (which kernels stay fp32 in bf16 mode, docs/speed.md, "bf16").
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { fileSystemHandler } from '@dptrain/core';
import { loadAddon } from '@dptrain/backend-native';
import { useBackend } from './backends.js';
import { medianCallMs } from './conv-gflops.js';

const { values: a } = parseArgs({
  options: {
    model: { type: 'string', default: path.resolve(process.env.DPTRAIN_SHARED ?? '/work/shared', 'models/mobilenet_v2') },
    batch: { type: 'string', default: '8' },
    reps: { type: 'string', default: '5' },
    backward: { type: 'boolean', default: false },
  },
});
const B = Number(a.batch);
const reps = Number(a.reps);
await tf.setBackend((await useBackend('native', 1)).tfBackend);
const addon = loadAddon();
if (addon.info().bf16Isa === '') throw new Error('this CPU has no bf16 instructions (neither AVX512-BF16 nor AMX)');
addon.setNumThreads(1);
const model = await tf.loadLayersModel(fileSystemHandler(a.model!));

interface Shape {
  name: string;
  x: number[];
  w: number[];
  y: number[];
  conv: number[];
  depthwise: boolean;
  flop: number;
}

/** tfjs 'same' / 'valid' padding as [top, left, bottom, right] (tfjs puts the odd pixel at the bottom / right). */
function pads(padding: string, h: number, w: number, k: number, s: number, ho: number, wo: number): number[] {
  if (padding !== 'same') return [0, 0, 0, 0];
  const ph = Math.max((ho - 1) * s + k - h, 0);
  const pw = Math.max((wo - 1) * s + k - w, 0);
  return [Math.floor(ph / 2), Math.floor(pw / 2), ph - Math.floor(ph / 2), pw - Math.floor(pw / 2)];
}

const shapes: Shape[] = [];
for (const layer of model.layers) {
  const cls = layer.getClassName();
  if (cls !== 'Conv2D' && cls !== 'DepthwiseConv2D') continue;
  const cfg = layer.getConfig() as { kernelSize: number[]; strides: number[]; padding: string; depthMultiplier?: number };
  const [, h, w, c] = (layer.input as tf.SymbolicTensor).shape as number[];
  const [, ho, wo, o] = (layer.output as tf.SymbolicTensor).shape as number[];
  const k = cfg.kernelSize[0]!;
  const s = cfg.strides[0]!;
  const depthwise = cls === 'DepthwiseConv2D';
  const p = pads(cfg.padding, h!, w!, k, s, ho!, wo!);
  shapes.push({
    name: layer.name,
    x: [B, h!, w!, c!],
    w: depthwise ? [k, k, c!, cfg.depthMultiplier ?? 1] : [k, k, c!, o!],
    y: [B, ho!, wo!, o!],
    conv: [s, s, ...p, 1, 1, ...(depthwise ? [1] : [])],
    depthwise,
    flop: 2 * B * ho! * wo! * o! * k * k * (depthwise ? 1 : c!),
  });
}

const rand = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 0.5);
const size = (d: number[]) => d.reduce((p, q) => p * q, 1);
const median = (run: () => void) => medianCallMs(run, reps, 1);

console.log(`${model.name}: ${shapes.length} convolutions, batch ${B}, 1 thread, median of ${reps}; ms fp32 / bf16 (ratio bf16 / fp32)`);
const totals = { fp32: 0, bf16: 0 };
for (const sh of shapes) {
  const x = rand(size(sh.x));
  const w = rand(size(sh.w));
  const y = new Float32Array(size(sh.y));
  const dx = new Float32Array(size(sh.x));
  const dw = new Float32Array(size(sh.w));
  const ms: Record<'fp32' | 'bf16', number> = { fp32: 0, bf16: 0 };
  for (const p of ['fp32', 'bf16'] as const) {
    addon.setPrecision(p);
    ms[p] = median(() => addon.conv2d(x, sh.x, w, sh.w, null, y, sh.y, sh.conv, 0));
    if (a.backward) {
      ms[p] += median(() => addon.conv2dBackpropInput(y, sh.y, w, sh.w, dx, sh.x, sh.conv));
      ms[p] += median(() => addon.conv2dBackpropFilter(x, sh.x, y, sh.y, dw, sh.w, sh.conv));
    }
    totals[p] += ms[p];
  }
  console.log(
    `${sh.name.padEnd(24)} ${sh.depthwise ? 'dw' : `${sh.w[0]}x${sh.w[1]}`} x[${sh.x.join(',')}] -> ${sh.y[3]}  ${(sh.flop / 1e6).toFixed(1).padStart(7)} MFLOP  ${ms.fp32.toFixed(2).padStart(6)} / ${ms.bf16.toFixed(2).padStart(6)} ms (${(ms.bf16 / ms.fp32).toFixed(2)})`,
  );
}
console.log(`total: fp32 ${totals.fp32.toFixed(1)} ms, bf16 ${totals.bf16.toFixed(1)} ms; bf16 kernels: ${JSON.stringify(addon.info().impl)}`);
addon.setPrecision('fp32');
