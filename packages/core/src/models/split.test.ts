import { existsSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { activateWasm } from '../backend/wasm.js';
import { isDptrainError } from '../errors.js';
import { createBackbone, type Backbone } from './backbone.js';
import { buildHeadless, buildTail } from './graph.js';
import { guessUnfreezeBlock, resolveSplit } from './split.js';
import { buildVgg } from './vgg16.js';

const MOBILENET = '../shared/models/mobilenet_v2';
// the real model lives beside the repo (../shared, as on CI); without it these tests are skipped, saying why
const HAVE_MOBILENET = existsSync(MOBILENET);
if (!HAVE_MOBILENET) console.warn(`skipping the real-MobileNetV2 tests: ${MOBILENET} is missing`);
let mnet: Backbone;

beforeAll(async () => {
  await activateWasm();
  if (HAVE_MOBILENET) mnet = await createBackbone({ kind: 'layers', path: MOBILENET, cut: 'out_relu' });
});

describe.skipIf(!HAVE_MOBILENET)('generic backbone: the real MobileNetV2', () => {
  it('loads through the file-system handler; input size read from the model', () => {
    expect(mnet.inputSize).toEqual([224, 224]);
    expect(mnet.cut).toBe('out_relu');
    expect(mnet.model.getLayer('out_relu').outputShape).toEqual([null, 7, 7, 1280]);
  });

  it('rejects an unknown cut layer, naming it', async () => {
    const err = await createBackbone({ kind: 'layers', path: MOBILENET, cut: 'no_such_layer' }).catch((e: unknown) => e);
    expect(isDptrainError(err, 'E_MODEL')).toBe(true);
    expect((err as Error).message).toContain('no_such_layer');
  });

  it('splits at single-tensor boundaries: prefix, last:K, and last:K inside a residual block moves back', () => {
    expect(resolveSplit(mnet.model, 'out_relu', 'block_16')).toMatchObject({ boundary: 'block_15_add' });
    expect(guessUnfreezeBlock(mnet.model, 'out_relu')).toBe('block_14');
    expect(guessUnfreezeBlock(mnet.model, 'out_relu', 1)).toBe('block_16');
    expect(resolveSplit(mnet.model, 'out_relu', 'block_14')).toMatchObject({ boundary: 'block_13_project_BN' });
    const last3 = resolveSplit(mnet.model, 'out_relu', 'last:3');
    expect(last3).toEqual({ boundary: 'block_16_project_BN', trainableLayers: ['Conv_1', 'Conv_1_bn', 'out_relu'] });
    const inside = resolveSplit(mnet.model, 'out_relu', 'last:13');
    expect(inside.boundary).toBe('block_14_add');
    expect(inside.warning).toMatch(/after block_15_project would cut through a residual.*block_14_add \(20 layers train instead of 13\)/);
    expect(inside.trainableLayers[0]).toBe('block_15_expand');
    const noPrefix = (() => {
      try {
        return resolveSplit(mnet.model, 'out_relu', 'block5');
      } catch (e) {
        return e;
      }
    })();
    expect(isDptrainError(noPrefix, 'E_MODEL')).toBe(true);
    expect((noPrefix as Error).message).toMatch(/block5.*last:K/);
  });

  it('frozen part then trainable part equals the whole backbone (weights shared, residual adds kept)', () => {
    const x = tf.randomUniform([1, 224, 224, 3], 0, 1, 'float32', 5);
    const whole = buildHeadless(mnet.model, 'out_relu', 'whole');
    const frozen = buildHeadless(mnet.model, 'block_13_project_BN', 'frozen');
    const tail = buildTail(mnet.model, 'block_13_project_BN', 'out_relu', 'tail');
    expect(tail.layers.map((l) => l.name)).toContain('block_15_add');
    const a = whole.predict(x) as tf.Tensor;
    const mid = frozen.predict(x) as tf.Tensor;
    const b = tail.predict(mid) as tf.Tensor;
    const diff = tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!;
    expect(tf.max(a).dataSync()[0]).toBeGreaterThan(0);
    expect(diff).toBeLessThan(1e-4);
    tf.dispose([x, a, mid, b]);
  });

  it('refuses a tail that starts inside a residual block', () => {
    let err: unknown;
    try {
      buildTail(mnet.model, 'block_15_project_BN', 'out_relu', 'bad');
    } catch (e) {
      err = e;
    }
    expect(isDptrainError(err, 'E_MODEL')).toBe(true);
  });
});

describe('VGG splits', () => {
  it('block5 prefix → boundary block4_pool; last:4 is the same', () => {
    const m = buildVgg({ inputSize: [32, 32], widths: [1, 1, 1, 1, 1] });
    expect(resolveSplit(m, 'block5_pool', 'block5').boundary).toBe('block4_pool');
    expect(resolveSplit(m, 'block5_pool', 'last:4')).toEqual(resolveSplit(m, 'block5_pool', 'block5'));
    expect(() => resolveSplit(m, 'block5_pool', 'last:18')).toThrow(/at least one must stay frozen/);
    m.dispose();
  });
});
