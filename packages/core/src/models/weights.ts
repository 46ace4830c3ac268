import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { DptrainError } from '../errors.js';
import { fileSystemHandler, modelJsonPath } from './fs-io.js';
import { readKerasH5, type H5Weight } from './keras-h5.js';
import { VGG16_NOTOP_H5 } from './vgg16.js';

/** Where Keras keeps downloaded weights: `~/.keras/models/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`. */
export function defaultVggWeightsPath(): string {
  return path.join(os.homedir(), '.keras', 'models', VGG16_NOTOP_H5);
}

/** Which weight of a layer a stored name denotes: 'kernel' / 'bias' / other (gamma, beta, moving_mean…). */
function weightKind(name: string): string {
  const last = name.replace(/:\d+$/, '').split('/').pop() ?? name;
  if (/_W(_\d+)?$/.test(last)) return 'kernel';
  if (/_b(_\d+)?$/.test(last)) return 'bias';
  return last;
}

function same(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * Set the weights of every layer of `model` that has weights from `byLayer` (layer name → arrays in the layer's
 * weight order). Every weighted layer must be present with the right shapes, else E_WEIGHTS names the layer.
 * Returns the number of layers set.
 */
export function assignLayerWeights(
  model: tf.LayersModel,
  byLayer: Map<string, { name: string; shape: number[]; values: Float32Array }[]>,
  source: string,
): number {
  let n = 0;
  for (const layer of model.layers) {
    const vars = layer.weights;
    if (vars.length === 0) continue;
    const stored = byLayer.get(layer.name);
    if (!stored) throw new DptrainError('E_WEIGHTS', `${source} has no weights for layer ${layer.name}`);
    if (stored.length !== vars.length) {
      throw new DptrainError('E_WEIGHTS', `${source}: layer ${layer.name} has ${stored.length} weight arrays, the model expects ${vars.length}`);
    }
    const tensors = vars.map((v, i) => {
      const w = stored[i]!;
      if (!same(w.shape, v.shape as number[])) {
        throw new DptrainError(
          'E_WEIGHTS',
          `${source}: layer ${layer.name} weight ${w.name} has shape [${w.shape.join(', ')}], the model expects [${v.shape.join(', ')}]`,
        );
      }
      return tf.tensor(w.values, w.shape);
    });
    layer.setWeights(tensors);
    tf.dispose(tensors);
    n++;
  }
  return n;
}

/** Load a Keras HDF5 weights file into the layers of `model` with the same names. */
export async function loadH5Weights(model: tf.LayersModel, file: string): Promise<number> {
  const map = await readKerasH5(file);
  return assignLayerWeights(model, map as Map<string, H5Weight[]>, file);
}

/**
 * Load a tfjs layers-format directory (model.json + shards) into the layers of `model` with the same names.
 * Weight names are `<layer>/<kernel|bias|…>` (optionally with a model prefix); matched per layer by kind.
 */
export async function loadTfjsWeights(model: tf.LayersModel, dir: string): Promise<number> {
  const artifacts = await fileSystemHandler(dir).load();
  if (!artifacts.weightSpecs || !artifacts.weightData) throw new DptrainError('E_WEIGHTS', `${modelJsonPath(dir)} has no weights`);
  const named = tf.io.decodeWeights(artifacts.weightData, artifacts.weightSpecs);
  try {
    const byLayer = new Map<string, { name: string; shape: number[]; values: Float32Array }[]>();
    const layerNames = new Set(model.layers.map((l) => l.name));
    for (const [name, t] of Object.entries(named)) {
      const parts = name.replace(/:\d+$/, '').split('/');
      const layer = parts
        .slice(0, -1)
        .reverse()
        .find((p) => layerNames.has(p));
      if (!layer) continue;
      const list = byLayer.get(layer) ?? [];
      list.push({ name, shape: [...t.shape], values: t.dataSync() as Float32Array });
      byLayer.set(layer, list);
    }
    // Order each layer's arrays as the layer's own weights (kernel, bias, gamma, …).
    for (const layer of model.layers) {
      const list = byLayer.get(layer.name);
      if (!list) continue;
      const order = layer.weights.map((v) => weightKind(v.originalName ?? v.name));
      list.sort((a, b) => order.indexOf(weightKind(a.name)) - order.indexOf(weightKind(b.name)));
    }
    return assignLayerWeights(model, byLayer, modelJsonPath(dir));
  } finally {
    tf.dispose(Object.values(named));
  }
}

/** Load weights from an .h5 file or a tfjs directory / model.json, chosen by the path. */
export async function loadWeightsInto(model: tf.LayersModel, source: string): Promise<number> {
  if (!fs.existsSync(source)) throw new DptrainError('E_WEIGHTS', `weights not found: ${source}`);
  const isTfjs = source.endsWith('.json') || fs.statSync(source).isDirectory();
  return isTfjs ? loadTfjsWeights(model, source) : loadH5Weights(model, source);
}
