import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDptrainError } from '../errors.js';
import { createBackbone } from './backbone.js';
import { fileSystemHandler } from './fs-io.js';
import { writeKerasH5, type H5Layer } from './keras-h5.js';
import { buildVgg } from './vgg16.js';

const WIDTHS = [2, 3, 4, 4, 4];
let tmp: string;

beforeAll(async () => {
  await tf.setBackend('cpu');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dptrain-weights-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Random arrays for every weighted layer of a tiny VGG, with the given weight-name style. */
function vggLayers(style: 'keras2' | 'keras1', seed = 1): H5Layer[] {
  const model = buildVgg({ inputSize: [32, 32], widths: WIDTHS });
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const layers: H5Layer[] = [{ name: 'input_1', weights: [] }];
  for (const l of model.layers.slice(1)) {
    const weights = l.weights.map((w, i) => {
      const shape = w.shape as number[];
      const n = shape.reduce((a, b) => a * b, 1);
      const kind = i === 0 ? 'kernel' : 'bias';
      const name = style === 'keras2' ? `${l.name}/${kind}:0` : `${l.name}_${kind === 'kernel' ? 'W' : 'b'}_1:0`;
      return { name, shape, values: Float32Array.from({ length: n }, rand) };
    });
    layers.push({ name: l.name, weights });
  }
  model.dispose();
  return layers;
}

function expectWeightsEqual(model: tf.LayersModel, layers: H5Layer[]): void {
  let checked = 0;
  for (const l of layers) {
    if (l.weights.length === 0) continue;
    const got = model.getLayer(l.name).getWeights();
    expect(got.length).toBe(l.weights.length);
    got.forEach((t, i) => {
      expect(t.shape).toEqual(l.weights[i]!.shape);
      expect(Array.from(t.dataSync())).toEqual(Array.from(l.weights[i]!.values));
      checked++;
    });
  }
  expect(checked).toBe(26);
}

describe('VGG16', () => {
  it('has Keras layer names and shapes (no top, 150x150 default)', () => {
    const m = buildVgg({ widths: [1, 1, 1, 1, 1] });
    expect(m.layers.map((l) => l.name)).toEqual([
      'input_1',
      'block1_conv1',
      'block1_conv2',
      'block1_pool',
      'block2_conv1',
      'block2_conv2',
      'block2_pool',
      'block3_conv1',
      'block3_conv2',
      'block3_conv3',
      'block3_pool',
      'block4_conv1',
      'block4_conv2',
      'block4_conv3',
      'block4_pool',
      'block5_conv1',
      'block5_conv2',
      'block5_conv3',
      'block5_pool',
    ]);
    expect(m.inputs[0]!.shape).toEqual([null, 150, 150, 3]);
    expect(m.outputs[0]!.shape).toEqual([null, 4, 4, 1]);
    m.dispose();
    const full = buildVgg();
    expect(full.countParams()).toBe(14714688); // Keras VGG16(include_top=False).count_params()
    expect(full.getLayer('block4_pool').outputShape).toEqual([null, 9, 9, 512]);
    full.dispose();
  });
});

describe('weights loading', () => {
  for (const style of ['keras2', 'keras1'] as const) {
    it(`reads a Keras HDF5 file (${style} weight names) into the layers of the same names`, async () => {
      const layers = vggLayers(style);
      const file = path.join(tmp, `vgg-${style}.h5`);
      await writeKerasH5(file, layers);
      const bb = await createBackbone({ kind: 'tiny-vgg', inputSize: [32, 32], tinyWidths: WIDTHS, weights: file });
      expect(bb.weightsSource).toBe(file);
      expectWeightsEqual(bb.model, layers);
      bb.model.dispose();
    });
  }

  it('names the layer when a shape does not match (E_WEIGHTS)', async () => {
    const layers = vggLayers('keras2');
    const conv = layers.find((l) => l.name === 'block3_conv2')!;
    conv.weights[0] = { ...conv.weights[0]!, shape: [3, 3, 4, 5], values: new Float32Array(180) };
    const file = path.join(tmp, 'bad.h5');
    await writeKerasH5(file, layers);
    const err = await createBackbone({ kind: 'tiny-vgg', inputSize: [32, 32], tinyWidths: WIDTHS, weights: file }).catch((e: unknown) => e);
    expect(isDptrainError(err, 'E_WEIGHTS')).toBe(true);
    expect((err as Error).message).toMatch(/block3_conv2.*\[3, 3, 4, 5\].*\[3, 3, 4, 4\]/);
  });

  it('says which file is missing or not HDF5', async () => {
    const missing = await createBackbone({ kind: 'tiny-vgg', weights: path.join(tmp, 'nope.h5') }).catch((e: unknown) => e);
    expect(isDptrainError(missing, 'E_WEIGHTS')).toBe(true);
    const junk = path.join(tmp, 'junk.h5');
    fs.writeFileSync(junk, 'not hdf5');
    const bad = await createBackbone({ kind: 'tiny-vgg', weights: junk }).catch((e: unknown) => e);
    expect(isDptrainError(bad, 'E_WEIGHTS')).toBe(true);
    expect((bad as Error).message).toContain(junk);
  });

  it('saves and loads tfjs layers-format directories through the file-system IOHandler', async () => {
    const layers = vggLayers('keras2', 7);
    const src = buildVgg({ inputSize: [32, 32], widths: WIDTHS, name: 'src' });
    for (const l of layers) if (l.weights.length) src.getLayer(l.name).setWeights(l.weights.map((w) => tf.tensor(w.values, w.shape)));
    const dir = path.join(tmp, 'tfjs-vgg');
    await src.save(fileSystemHandler(dir));
    expect(fs.existsSync(path.join(dir, 'model.json'))).toBe(true);
    expect(fs.statSync(path.join(dir, 'weights.bin')).size).toBe(src.countParams() * 4);
    src.dispose();
    const bb = await createBackbone({ kind: 'tiny-vgg', inputSize: [32, 32], tinyWidths: WIDTHS, weights: dir });
    expectWeightsEqual(bb.model, layers);
    // The same directory also loads as a generic backbone, input size read from the model.
    const generic = await createBackbone({ kind: 'layers', path: dir, cut: 'block4_pool' });
    expect(generic.inputSize).toEqual([32, 32]);
    expectWeightsEqual(generic.model, layers);
    bb.model.dispose();
    generic.model.dispose();
    // Several shards in two manifest groups (as tensorflowjs_converter writes) read back in order.
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
    const all = fs.readFileSync(path.join(dir, 'weights.bin'));
    const specs = json.weightsManifest[0].weights;
    const firstBytes = specs.slice(0, 4).reduce((a: number, w: { shape: number[] }) => a + 4 * w.shape.reduce((x, y) => x * y, 1), 0);
    const sharded = path.join(tmp, 'tfjs-sharded');
    fs.mkdirSync(sharded);
    fs.writeFileSync(path.join(sharded, 'group1-shard1of2.bin'), all.subarray(0, 100));
    fs.writeFileSync(path.join(sharded, 'group1-shard2of2.bin'), all.subarray(100, firstBytes));
    fs.writeFileSync(path.join(sharded, 'group2-shard1of1.bin'), all.subarray(firstBytes));
    json.weightsManifest = [
      { paths: ['group1-shard1of2.bin', 'group1-shard2of2.bin'], weights: specs.slice(0, 4) },
      { paths: ['group2-shard1of1.bin'], weights: specs.slice(4) },
    ];
    fs.writeFileSync(path.join(sharded, 'model.json'), JSON.stringify(json));
    const fromShards = await createBackbone({ kind: 'tiny-vgg', inputSize: [32, 32], tinyWidths: WIDTHS, weights: path.join(sharded, 'model.json') });
    expectWeightsEqual(fromShards.model, layers);
    fromShards.model.dispose();
    // A missing shard is an E_WEIGHTS error naming the file.
    fs.rmSync(path.join(sharded, 'group2-shard1of1.bin'));
    const err = await createBackbone({ kind: 'tiny-vgg', inputSize: [32, 32], tinyWidths: WIDTHS, weights: sharded }).catch((e: unknown) => e);
    expect(isDptrainError(err, 'E_WEIGHTS')).toBe(true);
    expect((err as Error).message).toContain('group2-shard1of1.bin');
  });

  it('without weights, VGG16 starts from seeded random init with a warning', async () => {
    const home = process.env['HOME'];
    process.env['HOME'] = tmp;
    try {
      const warnings: string[] = [];
      const a = await createBackbone({ kind: 'vgg16', inputSize: [32, 32] }, { seed: 3, onWarning: (m) => warnings.push(m) });
      expect(a.weightsSource).toBe('random');
      expect(warnings.join('\n')).toMatch(
        /RANDOM initialisation.*vgg16_weights_tf_dim_ordering_tf_kernels_notop\.h5|vgg16_weights_tf_dim_ordering_tf_kernels_notop\.h5.*RANDOM/s,
      );
      const k1 = a.model.getLayer('block1_conv1').getWeights()[0]!.dataSync().slice(0, 20);
      a.model.dispose();
      const b = await createBackbone({ kind: 'vgg16', inputSize: [32, 32] }, { seed: 3, onWarning: () => undefined });
      expect(Array.from(b.model.getLayer('block1_conv1').getWeights()[0]!.dataSync().slice(0, 20))).toEqual(Array.from(k1));
      b.model.dispose();
    } finally {
      process.env['HOME'] = home;
    }
  });
});
