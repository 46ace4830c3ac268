/**
 * Every kernel registered by registerWasmTrainingKernels checked against the cpu backend's own kernel
 * on small random shapes: stride 1 and 2, 'same' and 'valid' (and explicit) padding, batch 1 and 3,
 * several channel counts, within 1e-4 relative tolerance. Plus: no tensor/data leak.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { WASM_TRAINING_KERNELS, registerWasmTrainingKernels } from '../../packages/core/src/backend/kernels/register.js';
import { activateWasm } from '../../packages/core/src/backend/wasm.js';
import { expectClose, mulberry32, randomArray } from './native-backend.testutil.js';

type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];

interface Case {
  n: number;
  h: number;
  w: number;
  cin: number;
  cout: number; // conv: output channels; depthwise: channel multiplier
  fh: number;
  fw: number;
  s: [number, number];
  pad: Pad;
  d?: [number, number];
  /** conv only: run the kernel in NCHW layout. */
  nchw?: boolean;
}

function conv2dCases(): Case[] {
  const out: Case[] = [];
  const shapes = [
    { n: 1, h: 5, w: 5, cin: 1, cout: 2, fh: 3, fw: 3 },
    { n: 3, h: 7, w: 6, cin: 3, cout: 4, fh: 3, fw: 3 },
    { n: 3, h: 8, w: 8, cin: 5, cout: 3, fh: 1, fw: 1 },
    { n: 1, h: 9, w: 7, cin: 4, cout: 6, fh: 2, fw: 3 },
    { n: 3, h: 6, w: 6, cin: 8, cout: 8, fh: 5, fw: 5 },
  ];
  for (const sh of shapes) for (const s of [1, 2]) for (const pad of ['same', 'valid'] as const) out.push({ ...sh, s: [s, s], pad });
  out.push({ n: 2, h: 7, w: 7, cin: 3, cout: 2, fh: 3, fw: 3, s: [2, 1], pad: 'same' });
  out.push({
    n: 2,
    h: 6,
    w: 7,
    cin: 3,
    cout: 2,
    fh: 3,
    fw: 3,
    s: [1, 1],
    pad: [
      [0, 0],
      [1, 2],
      [0, 1],
      [0, 0],
    ],
  });
  out.push({ n: 2, h: 7, w: 6, cin: 3, cout: 4, fh: 3, fw: 3, s: [2, 2], pad: 'same', nchw: true });
  return out;
}

function depthwiseCases(): Case[] {
  const out: Case[] = [];
  const shapes = [
    { n: 1, h: 5, w: 5, cin: 1, cout: 1, fh: 3, fw: 3 },
    { n: 3, h: 7, w: 6, cin: 4, cout: 1, fh: 3, fw: 3 },
    { n: 3, h: 8, w: 8, cin: 3, cout: 2, fh: 3, fw: 3 },
    { n: 1, h: 9, w: 9, cin: 6, cout: 1, fh: 5, fw: 5 },
  ];
  for (const sh of shapes) for (const s of [1, 2]) for (const pad of ['same', 'valid'] as const) out.push({ ...sh, s: [s, s], pad });
  out.push({ n: 2, h: 9, w: 9, cin: 3, cout: 1, fh: 3, fw: 3, s: [1, 1], pad: 'same', d: [2, 2] });
  out.push({ n: 2, h: 9, w: 8, cin: 2, cout: 2, fh: 3, fw: 3, s: [1, 1], pad: 'valid', d: [2, 1] });
  return out;
}

/** Max pools (cout unused). With inputs in [-1, 1] some windows have a negative maximum: wasm's own MaxPoolGrad drops those. */
function maxPoolCases(): Case[] {
  return [
    { n: 1, h: 4, w: 4, cin: 24, cout: 0, fh: 3, fw: 3, s: [2, 2], pad: 'same' },
    { n: 2, h: 4, w: 4, cin: 1, cout: 0, fh: 2, fw: 2, s: [2, 2], pad: 'valid' },
    { n: 3, h: 7, w: 6, cin: 5, cout: 0, fh: 3, fw: 3, s: [1, 1], pad: 'same' },
    { n: 2, h: 8, w: 8, cin: 32, cout: 0, fh: 2, fw: 2, s: [2, 2], pad: 'valid' },
    { n: 2, h: 9, w: 9, cin: 12, cout: 0, fh: 3, fw: 3, s: [2, 2], pad: 'valid' },
    { n: 8, h: 9, w: 9, cin: 512, cout: 0, fh: 2, fw: 2, s: [2, 2], pad: 'valid' }, // VGG16 block5_pool at 150 px
  ];
}

function outSize(c: Case): [number, number] {
  const info = tf.backend_util.computeConv2DInfo([c.n, c.h, c.w, c.cin], [c.fh, c.fw, c.cin, c.cout], c.s, c.d ?? 1, c.pad, undefined, false);
  return [info.outHeight, info.outWidth];
}

const label = (c: Case) =>
  `n${c.n} ${c.h}x${c.w}x${c.cin}→${c.cout} k${c.fh}x${c.fw} s${c.s.join(',')} ${Array.isArray(c.pad) ? 'explicit' : c.pad}${c.d ? ` d${c.d.join(',')}` : ''}${c.nchw ? ' NCHW' : ''}`;

interface KernelCall {
  inputs: Record<string, { shape: number[]; values: Float32Array }>;
  attrs: Record<string, unknown>;
}

function callFor(kernel: string, c: Case, seed: number): KernelCall {
  const rnd = mulberry32(seed);
  const [oh, ow] = outSize(c);
  const depthwise = kernel.startsWith('Depthwise');
  const outC = depthwise ? c.cin * c.cout : c.cout;
  const xShape = c.nchw ? [c.n, c.cin, c.h, c.w] : [c.n, c.h, c.w, c.cin];
  const wShape = [c.fh, c.fw, c.cin, c.cout];
  const dyShape = c.nchw ? [c.n, outC, oh, ow] : [c.n, oh, ow, outC];
  const t = (shape: number[]) => ({ shape, values: randomArray(rnd, shape) });
  if (kernel === 'MaxPoolGrad') {
    const poolOut = [c.n, oh, ow, c.cin];
    return { inputs: { dy: t(poolOut), input: t(xShape), output: t(poolOut) }, attrs: { filterSize: [c.fh, c.fw], strides: c.s, pad: c.pad } };
  }
  const base = depthwise ? { strides: c.s, pad: c.pad, dilations: c.d ?? [1, 1] } : { strides: c.s, pad: c.pad, dataFormat: c.nchw ? 'NCHW' : 'NHWC' };
  if (kernel.endsWith('BackpropFilter')) return { inputs: { x: t(xShape), dy: t(dyShape) }, attrs: { ...base, filterShape: wShape } };
  return { inputs: { dy: t(dyShape), filter: t(wShape) }, attrs: { ...base, inputShape: xShape } };
}

async function runOn(backend: string, kernel: string, call: KernelCall): Promise<Float32Array> {
  await tf.setBackend(backend);
  const inputs: Record<string, tf.Tensor> = {};
  for (const [k, v] of Object.entries(call.inputs)) inputs[k] = tf.tensor(v.values, v.shape);
  const out = tf.engine().runKernel(kernel, inputs as unknown as tf.NamedTensorMap, call.attrs as tf.NamedAttrMap) as tf.Tensor;
  const data = (await out.data()) as Float32Array;
  tf.dispose([out, ...Object.values(inputs)]);
  return data;
}

/**
 * For the linear map y = depthwise(x, w): <dy, y> = <backpropInput(dy, w), x> = <backpropFilter(x, dy), w>.
 */
async function checkAdjoint(kernel: string, c: Case, call: KernelCall): Promise<void> {
  const rnd = mulberry32(99);
  const other = kernel.endsWith('BackpropFilter') ? { name: 'filter', shape: [c.fh, c.fw, c.cin, c.cout] } : { name: 'x', shape: [c.n, c.h, c.w, c.cin] };
  const full: Record<string, { shape: number[]; values: Float32Array }> = {
    ...call.inputs,
    [other.name]: { shape: other.shape, values: randomArray(rnd, other.shape) },
  };
  await tf.setBackend('cpu');
  const x = tf.tensor4d(full.x!.values, full.x!.shape as [number, number, number, number]);
  const w = tf.tensor4d(full.filter!.values, full.filter!.shape as [number, number, number, number]);
  const y = tf.depthwiseConv2d(x, w, c.s, c.pad, 'NHWC', c.d);
  const yv = await y.data();
  tf.dispose([x, w, y]);
  const dyv = full.dy!.values;
  let lhs = 0;
  let scale = 0;
  for (let i = 0; i < yv.length; i++) {
    lhs += yv[i]! * dyv[i]!;
    scale += Math.abs(yv[i]! * dyv[i]!);
  }
  const got = await runOn('wasm', kernel, call);
  const ov = full[other.name]!.values;
  let rhs = 0;
  for (let i = 0; i < got.length; i++) rhs += got[i]! * ov[i]!;
  expect(Math.abs(lhs - rhs) / scale).toBeLessThanOrEqual(1e-4);
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  await activateWasm();
});

describe('wasm training kernels match the cpu backend', () => {
  const table: [string, Case[]][] = [
    ['Conv2DBackpropFilter', conv2dCases()],
    ['Conv2DBackpropInput', conv2dCases()],
    ['DepthwiseConv2dNativeBackpropFilter', depthwiseCases()],
    ['DepthwiseConv2dNativeBackpropInput', depthwiseCases()],
    ['MaxPoolGrad', maxPoolCases()],
  ];
  it('covers every registered kernel', () => {
    expect(table.map(([k]) => k).sort()).toEqual(WASM_TRAINING_KERNELS.map((k) => k.kernelName).sort());
  });
  for (const [kernel, cases] of table) {
    describe(kernel, () => {
      cases.forEach((c, i) => {
        it(label(c), async () => {
          const call = callFor(kernel, c, 1000 + i);
          if (c.d && (c.d[0] > 1 || c.d[1] > 1)) {
            // tfjs's cpu depthwise gradients ignore dilations (tfjs refuses dilated depthwise
            // gradients), so check the adjoint identity against the cpu *forward* op instead.
            await checkAdjoint(kernel, c, call);
            return;
          }
          const ref = await runOn('cpu', kernel, call);
          const got = await runOn('wasm', kernel, call);
          expectClose(got, ref, 1e-4);
        });
      });
    });
  }
});

describe('wasm training kernels do not leak', () => {
  it('numTensors and the backend data ids stay flat', async () => {
    await tf.setBackend('wasm');
    const run = () => {
      for (const k of WASM_TRAINING_KERNELS) {
        const dw = k.kernelName.startsWith('Depthwise');
        const call = callFor(k.kernelName, { n: 2, h: 6, w: 6, cin: 3, cout: dw ? 2 : 4, fh: 3, fw: 3, s: [2, 2], pad: 'same' }, 7);
        const inputs: Record<string, tf.Tensor> = {};
        for (const [name, v] of Object.entries(call.inputs)) inputs[name] = tf.tensor(v.values, v.shape);
        const out = tf.engine().runKernel(k.kernelName, inputs as unknown as tf.NamedTensorMap, call.attrs as tf.NamedAttrMap) as tf.Tensor;
        out.dataSync();
        tf.dispose([out, ...Object.values(inputs)]);
      }
    };
    run();
    const before = { tensors: tf.memory().numTensors, dataIds: tf.engine().backend.numDataIds() };
    for (let i = 0; i < 5; i++) run();
    expect(tf.memory().numTensors).toBe(before.tensors);
    expect(tf.engine().backend.numDataIds()).toBe(before.dataIds);
  });
});

describe('registerWasmTrainingKernels', () => {
  it('is idempotent and installs exactly the listed kernels on wasm', () => {
    registerWasmTrainingKernels();
    const before = WASM_TRAINING_KERNELS.map((k) => tf.getKernel(k.kernelName, 'wasm')?.kernelFunc);
    registerWasmTrainingKernels();
    const after = WASM_TRAINING_KERNELS.map((k) => tf.getKernel(k.kernelName, 'wasm')?.kernelFunc);
    expect(after).toEqual(before);
    expect(after).toEqual(WASM_TRAINING_KERNELS.map((k) => k.kernelFunc));
    // the cpu backend keeps its own kernels
    expect(tf.getKernel('Conv2DBackpropFilter', 'cpu')?.kernelFunc).not.toBe(WASM_TRAINING_KERNELS[0]!.kernelFunc);
  });

  it('accepts bare TensorInfo inputs (as backends pass them) without touching their data', async () => {
    await tf.setBackend('wasm');
    const x = tf.ones([1, 4, 4, 2]);
    const dy = tf.ones([1, 4, 4, 3]);
    const kernel = tf.getKernel('Conv2DBackpropFilter', 'wasm')!;
    const info = (t: tf.Tensor): tf.TensorInfo => ({ dataId: t.dataId, shape: t.shape, dtype: t.dtype });
    const tensorsBefore = tf.memory().numTensors;
    const out = kernel.kernelFunc({
      inputs: { x: info(x), dy: info(dy) },
      attrs: { strides: [1, 1], pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 2, 3] },
      backend: tf.backend(),
    }) as tf.Tensor;
    const values = await out.data();
    expect(values[(1 * 3 + 1) * 2 * 3]).toBe(16); // centre tap: all 16 pixels
    out.dispose();
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    // inputs are intact
    expect(Array.from(await x.data())).toEqual(new Array(32).fill(1));
    tf.dispose([x, dy]);
  });
});
