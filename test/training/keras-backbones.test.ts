/**
 * Any Keras-applications-shaped tfjs layers backbone trains through both phases and predicts, on every CPU backend:
 * small random-weight models in the shapes of InceptionV3, ResNet50, DenseNet121, Xception, EfficientNetB0 and
 * MobileNetV3, saved in the tfjs layers format and loaded through the replica as `--backbone PATH` does. Gradients
 * of both phases (with the default unfreeze) on wasm and native equal the tfjs cpu backend's; cached features give
 * the same gradients as uncached ones; predictions use flip TTA.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activateWasm } from '../../packages/core/src/backend/wasm.js';
import { parseRunConfig } from '../../packages/core/src/config.js';
import type { Sample } from '../../packages/core/src/data/types.js';
import { fileSystemHandler } from '../../packages/core/src/models/fs-io.js';
import { KERAS_SHAPES, buildKerasShape, type KerasShape } from '../../packages/core/src/models/keras-shapes.testutil.js';
import { loadTrainedModel } from '../../packages/core/src/models/trained-model.js';
import { createReplica, type BatchSource } from '../../packages/core/src/training/replica.js';
import { samplesOf } from '../../packages/core/src/training/replica.testutil.js';
import { expectClose } from '../backend/native-backend.testutil.js';

const S = 32;
/** Deterministic "photos" in [0, 1] (unit preprocessing), different per sample and class. */
const images: BatchSource = {
  async loadBatch(samples: readonly Sample[]) {
    const d = new Float32Array(samples.length * S * S * 3);
    samples.forEach((s, i) => {
      for (let j = 0; j < S * S * 3; j++) d[i * S * S * 3 + j] = 0.5 + 0.45 * Math.sin(s.index * 1.7 + j * (0.011 + 0.004 * s.label) + (j % 3));
    });
    return { data: d, shape: [samples.length, S, S, 3] };
  },
};

let tmp = '';
let nativeBackend: string | undefined;
let nativeSkip = '';

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dptrain-keras-'));
  await tf.setBackend('cpu');
  for (const shape of KERAS_SHAPES) {
    const m = buildKerasShape(shape, { size: S });
    await m.save(fileSystemHandler(path.join(tmp, shape)));
    m.dispose();
  }
  await activateWasm();
  try {
    const mod = (await import('@dptrain/backend-native')) as { registerNativeBackend: () => Promise<{ tfBackend: string }> };
    nativeBackend = (await mod.registerNativeBackend()).tfBackend;
  } catch (e) {
    nativeSkip = (e as Error).message;
    console.warn(`skipping the native-backend checks: ${nativeSkip}`);
  }
});
afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

interface PhaseRun {
  loss: number;
  gradients: Float32Array;
  names: string[];
  sizes: number[];
  probs: Float32Array;
}
interface Run {
  head: PhaseRun;
  fine: PhaseRun;
  boundary: string;
  warnings: string[];
  missesPhase1: number;
  missesPhase2: number;
  leaked: number;
}

const train = samplesOf(6);
const test = samplesOf(3, 10).map((s) => ({ ...s, split: 'test' as const }));

/** Both phases of one backbone on one backend: head gradients, then the default fine-tune gradients, predictions with flip TTA. */
async function run(shape: KerasShape, backend: string, cache: boolean): Promise<Run> {
  await tf.setBackend(backend);
  const config = parseRunConfig({
    dataDir: '/nonexistent',
    classNames: ['a', 'b', 'c'],
    backbone: { kind: 'layers', path: path.join(tmp, shape) },
    preprocess: 'unit',
    head: { units: 8, dropout: 0.5 },
    headPhase: { epochs: 1, learningRate: 1e-3 },
    fineTunePhase: { epochs: 1, learningRate: 1e-4 }, // no unfreeze: the generic default
    tta: 'flip',
  });
  const warnings: string[] = [];
  const r = await createReplica(config, { images, cache, cacheFp16: false, onWarning: (m) => warnings.push(m) });
  const phase = async (name: 'head' | 'fine_tune', step: number): Promise<PhaseRun> => {
    const before = tf.memory().numTensors;
    const g = await r.computeGradients(train, { phase: name, epoch: 0, step });
    const probs = await r.predict(test);
    expect(tf.memory().numTensors, `${shape} ${name} on ${backend}: tensors left behind`).toBe(before);
    return { loss: g.loss, gradients: g.gradients, names: r.spec.map((s) => s.name), sizes: r.spec.map((s) => s.size), probs };
  };
  const head = await phase('head', 0);
  const missesPhase1 = r.cacheStats?.misses ?? 0;
  await r.setPhase('fine_tune');
  const boundary = r.split!.boundary;
  const fine = await phase('fine_tune', 1);
  const missesPhase2 = r.cacheStats?.misses ?? 0;
  const before = tf.memory().numTensors;
  r.dispose();
  return { head, fine, boundary, warnings, missesPhase1, missesPhase2, leaked: before - tf.memory().numTensors };
}

function expectSameRun(got: Run, want: Run, rtol: number): void {
  expect(got.boundary).toBe(want.boundary);
  for (const p of ['head', 'fine'] as const) {
    expect(got[p].names).toEqual(want[p].names);
    expect(got[p].loss).toBeCloseTo(want[p].loss, 4);
    expectClose(got[p].gradients, want[p].gradients, rtol);
    expectClose(got[p].probs, want[p].probs, rtol);
  }
}

const reference = new Map<KerasShape, Run>();

describe.each(KERAS_SHAPES)('the %s shape as a tfjs layers backbone', (shape) => {
  it('trains both phases on cpu: backbone weights get gradients in phase 2; cached features give the same gradients', async () => {
    const plain = await run(shape, 'cpu', false);
    reference.set(shape, plain);
    expect(plain.head.names.every((n) => n.startsWith('head_'))).toBe(true);
    const backboneGrads = plain.fine.names.filter((n) => !n.startsWith('head_'));
    expect(backboneGrads.length).toBeGreaterThan(0);
    expect(plain.warnings.join('\n')).toMatch(/no --unfreeze given; phase 2 unfreezes '[^']+' instead: .* backbone weights/);
    for (const p of [plain.head, plain.fine]) {
      expect(Number.isFinite(p.loss)).toBe(true);
      expect(p.gradients.every(Number.isFinite)).toBe(true);
      expect(p.probs.length).toBe(test.length * 3);
      for (let i = 0; i < test.length; i++) expect(p.probs[i * 3]! + p.probs[i * 3 + 1]! + p.probs[i * 3 + 2]!).toBeCloseTo(1, 5);
    }
    // every unfrozen backbone weight tensor gets a non-zero gradient
    let off = 0;
    plain.fine.names.forEach((n, i) => {
      const size = plain.fine.sizes[i]!;
      expect(
        plain.fine.gradients.subarray(off, off + size).some((v) => v !== 0),
        `${n} has a zero gradient`,
      ).toBe(true);
      off += size;
    });
    const cached = await run(shape, 'cpu', true);
    expectSameRun(cached, plain, 1e-5);
    expect(cached.missesPhase1).toBeGreaterThan(0);
    // phase 2 reads the boundary features that the phase-1 passes stored: it never runs the frozen part again
    expect(cached.missesPhase2).toBe(cached.missesPhase1);
  });

  it('gives the cpu gradients and predictions on wasm (cached and uncached)', async () => {
    const want = reference.get(shape)!;
    expectSameRun(await run(shape, 'wasm', false), want, 1e-3);
    expectSameRun(await run(shape, 'wasm', true), want, 1e-3);
  });

  it('gives the cpu gradients and predictions on native (cached and uncached)', async (ctx) => {
    if (!nativeBackend) ctx.skip();
    const want = reference.get(shape)!;
    expectSameRun(await run(shape, nativeBackend!, false), want, 1e-3);
    expectSameRun(await run(shape, nativeBackend!, true), want, 1e-3);
  });
});

describe('a trained InceptionV3-shaped model (BatchNorm scale=False) saves and predicts', () => {
  it('loadTrainedModel predicts what the replica predicts', async () => {
    await tf.setBackend('cpu');
    const config = parseRunConfig({
      dataDir: '/nonexistent',
      classNames: ['a', 'b', 'c'],
      backbone: { kind: 'layers', path: path.join(tmp, 'inception_v3') },
      preprocess: 'unit',
      head: { units: 8 },
      fineTunePhase: { epochs: 1, learningRate: 1e-4 },
      tta: 'none',
    });
    const r = await createReplica(config, { images, cache: false, onWarning: () => undefined });
    await r.setPhase('fine_tune');
    const g = await r.computeGradients(train, { phase: 'fine_tune', epoch: 0, step: 0 });
    r.setWeights(r.getWeights().map((w, i) => w - 0.05 * g.gradients[i]!));
    const dir = path.join(tmp, 'trained-inception');
    await r.save(dir);
    const direct = await r.predict(test);
    const m = await loadTrainedModel(dir);
    const pix = await images.loadBatch(test);
    const loaded = m.predictPixels(pix.data, test.length);
    expectClose(loaded, direct, 1e-5);
    m.dispose();
    r.dispose();
  });
});
