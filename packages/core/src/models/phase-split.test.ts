import { existsSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { activateWasm } from '../backend/wasm.js';
import { isDptrainError } from '../errors.js';
import { createBackbone, type Backbone } from './backbone.js';
import { buildHeadless, buildTail } from './graph.js';
import { KERAS_SHAPES, buildKerasShape, type KerasShape } from './keras-shapes.testutil.js';
import { chooseUnfreeze, DEFAULT_UNFREEZE_TOP, guessUnfreezeBlock, measuredUnfreeze, resolveSplit, splitWeights } from './phase-split.js';
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
    expect((noPrefix as Error).message).toMatch(/block5.*last:K or top:P%/);
  });

  it('with no unfreeze set, MobileNetV2 gets its measured default block_10; cut below block_16 it gets the generic guess', () => {
    const choice = chooseUnfreeze(mnet.model, 'out_relu', 'layers', undefined);
    expect(choice.unfreeze).toBe('block_10');
    expect(choice.guessed).toMatch(
      /^no --unfreeze given; phase 2 unfreezes 'block_10' \(MobileNetV2's default\) instead: the layers after block_9_add up to out_relu, \d+ of 2223872 backbone weights/,
    );
    expect(measuredUnfreeze(mnet.model, 'block_15_add')).toBeUndefined();
    expect(chooseUnfreeze(mnet.model, 'block_15_add', 'layers', undefined).unfreeze).toBe(guessUnfreezeBlock(mnet.model, 'block_15_add'));
    // an explicit choice is kept
    expect(chooseUnfreeze(mnet.model, 'out_relu', 'layers', 'block_14')).toEqual({ unfreeze: 'block_14' });
  });

  it('top:P% trains the smallest tail with P % of the learnable weights, from a block end (block_N_add)', () => {
    const half = resolveSplit(mnet.model, 'out_relu', 'top:50%');
    expect(half.boundary).toBe('block_14_add');
    expect(splitWeights(mnet.model, 'out_relu', half)).toEqual({ trainable: 1_206_080, total: 2_223_872 });
    expect(resolveSplit(mnet.model, 'out_relu', 'top:30%').boundary).toBe('block_15_add');
    // the default (numbered blocks) trains blocks 14-16 + Conv_1
    expect(splitWeights(mnet.model, 'out_relu', resolveSplit(mnet.model, 'out_relu', 'block_14')).trainable).toBe(1_526_080);
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

describe("'top:P%' on Keras-application shapes without numbered blocks", () => {
  it('InceptionV3 shape: the default is top:50%, cut after a mixed (Concatenate) block', () => {
    const m = buildKerasShape('inception_v3');
    expect(guessUnfreezeBlock(m, m.outputs[0]!.sourceLayer.name)).toBe(DEFAULT_UNFREEZE_TOP);
    const cut = m.outputs[0]!.sourceLayer.name;
    const s = resolveSplit(m, cut, DEFAULT_UNFREEZE_TOP);
    expect(s.boundary).toMatch(/^mixed\d$/);
    const { trainable, total } = splitWeights(m, cut, s);
    expect(trainable / total).toBeGreaterThanOrEqual(0.5);
    expect(trainable / total).toBeLessThanOrEqual(0.75);
    // one block end later would train less than half
    const later = `mixed${Number(s.boundary.slice(5)) + 1}`;
    const order = m.layers.map((l) => l.name);
    const tailAfterLater = m.layers.slice(order.indexOf(later) + 1).map((l) => l.name);
    expect(splitWeights(m, cut, { boundary: later, trainableLayers: tailAfterLater }).trainable / total).toBeLessThan(0.5);
    m.dispose();
  });

  it('MobileNetV3 shape: no block end close enough, so the split point itself (a project BatchNorm); P out of range is refused', () => {
    const m = buildKerasShape('mobilenet_v3');
    const cut = m.outputs[0]!.sourceLayer.name;
    expect(guessUnfreezeBlock(m, cut)).toBe(DEFAULT_UNFREEZE_TOP);
    const s = resolveSplit(m, cut, 'top:50%');
    expect(s.boundary).toBe('expanded_conv_3_project_batch_norm');
    expect(splitWeights(m, cut, s)).toEqual({ trainable: 11_480, total: 18_338 });
    for (const bad of ['top:0%', 'top:100%']) expect(() => resolveSplit(m, cut, bad)).toThrow(/above 0 and below 100/);
    // almost everything: only the weightless rescaling layer stays frozen
    expect(resolveSplit(m, cut, 'top:99.99%').boundary).toBe('rescaling');
    m.dispose();
  });
});

describe('the default phase-2 split of each Keras-application shape (the table in docs/models.md)', () => {
  // [default unfreeze, boundary, backbone weights that train, learnable backbone weights]
  const want: Record<KerasShape, [string, string, number, number]> = {
    inception_v3: ['top:50%', 'mixed1', 5_322, 8_180],
    resnet50: ['conv3_block2', 'conv3_block1_out', 3_984, 7_144],
    densenet121: ['conv4_block1', 'pool3_pool', 2_680, 9_450],
    xception: ['block5', 'add_2', 5_432, 9_128],
    efficientnet_b0: ['top:50%', 'block2b_add', 12_263, 17_750],
    mobilenet_v3: ['top:50%', 'expanded_conv_3_project_batch_norm', 11_480, 18_338],
  };
  it.each(KERAS_SHAPES)('%s', (shape) => {
    const m = buildKerasShape(shape);
    const cut = m.outputs[0]!.sourceLayer.name;
    const unfreeze = guessUnfreezeBlock(m, cut);
    const s = resolveSplit(m, cut, unfreeze);
    const { trainable, total } = splitWeights(m, cut, s);
    expect([unfreeze, s.boundary, trainable, total]).toEqual(want[shape]);
    m.dispose();
  });
});
