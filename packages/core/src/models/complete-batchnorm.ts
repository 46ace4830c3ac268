import * as tf from '@tensorflow/tfjs';
import { DptrainError } from '../errors.js';

/**
 * BatchNormalization layers without a scale or an offset (Keras InceptionV3 uses `scale=False` throughout) cannot
 * be differentiated in tfjs 4.22: the FusedBatchNorm gradient saves its `scale` input for the backward pass
 * unconditionally, so the tape clones `undefined` ("Cannot read properties of undefined (reading 'dataId')" in the
 * Identity kernel, from Engine.saveTensorsForBackwardMode), and a missing offset breaks the tape walk the same way
 * (tensorflow/tfjs#2868). Phase 1 never records gradients through the backbone, so it only shows in phase 2.
 *
 * The fix, at load: such a layer gets an explicit gamma of ones (and beta of zeros), which computes exactly the same
 * function, and those filled weights are made non-trainable, so phase 2 trains what Keras would train.
 */

/** What `completeBatchNorm` filled in. */
export interface CompletedBatchNorm {
  /** The artifacts with every BatchNormalization layer scaled and centred. */
  artifacts: tf.io.ModelArtifacts;
  /** Weight names added (`LAYER/gamma`, `LAYER/beta`): constants that never train. */
  filled: string[];
}

interface LayerJson {
  class_name: string;
  config: { name?: string; scale?: boolean; center?: boolean; [k: string]: unknown };
}

function batchNormLayers(node: unknown, out: LayerJson[]): LayerJson[] {
  if (Array.isArray(node)) {
    for (const n of node) batchNormLayers(n, out);
  } else if (node !== null && typeof node === 'object') {
    const o = node as Record<string, unknown>;
    if (o['class_name'] === 'BatchNormalization' && o['config'] !== null && typeof o['config'] === 'object') out.push(o as unknown as LayerJson);
    for (const v of Object.values(o)) batchNormLayers(v, out);
  }
  return out;
}

/**
 * Gives every BatchNormalization layer of a tfjs layers model a scale (gamma = 1) and an offset (beta = 0) where it
 * has none, adding those weights to the manifest and the weight data. Returns the artifacts unchanged (same object)
 * when nothing is missing. The layer's channel count is read from its moving mean.
 */
export function completeBatchNorm(artifacts: tf.io.ModelArtifacts): CompletedBatchNorm {
  const specs = artifacts.weightSpecs ?? [];
  const layers = batchNormLayers(artifacts.modelTopology, []).filter((l) => l.config.scale === false || l.config.center === false);
  if (layers.length === 0 || artifacts.weightData === undefined) return { artifacts, filled: [] };
  const topology = JSON.parse(JSON.stringify(artifacts.modelTopology)) as object;
  const copies = new Map(batchNormLayers(topology, []).map((l) => [l.config.name, l] as const));
  const added: tf.io.WeightsManifestEntry[] = [];
  const values: Float32Array[] = [];
  const filled: string[] = [];
  for (const layer of layers) {
    const name = layer.config.name;
    const mean = specs.find((s) => s.name === `${name}/moving_mean` || s.name.endsWith(`/${name}/moving_mean`));
    const copy = copies.get(name);
    if (!mean || !copy) continue; // leave it: loading names what is wrong
    const channels = mean.shape.reduce((a, b) => a * b, 1);
    const prefix = mean.name.slice(0, -'moving_mean'.length);
    for (const [flag, weight, value] of [
      ['scale', 'gamma', 1],
      ['center', 'beta', 0],
    ] as const) {
      if (layer.config[flag] !== false) continue;
      copy.config[flag] = true;
      added.push({ name: `${prefix}${weight}`, shape: [...mean.shape], dtype: 'float32' });
      values.push(new Float32Array(channels).fill(value));
      filled.push(`${prefix}${weight}`);
    }
  }
  if (filled.length === 0) return { artifacts, filled };
  const old = new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData));
  const extra = values.reduce((a, v) => a + v.byteLength, 0);
  const data = new Uint8Array(old.byteLength + extra);
  data.set(old);
  let off = old.byteLength;
  for (const v of values) {
    data.set(new Uint8Array(v.buffer), off);
    off += v.byteLength;
  }
  return { artifacts: { ...artifacts, modelTopology: topology, weightSpecs: [...specs, ...added], weightData: data.buffer }, filled };
}

/** A layer's weight lists (tfjs keeps them private; moving a weight between them is what trainable=false per weight needs). */
interface LayerWeightLists {
  _trainableWeights: tf.LayerVariable[];
  _nonTrainableWeights: tf.LayerVariable[];
}

/**
 * Moves the named weights of `model`'s layers (nested models' too) to their layer's non-trainable weights, for good
 * (layer.trainable no longer touches them).
 */
export function makeConstant(model: tf.LayersModel, names: readonly string[]): void {
  const wanted = new Set(names);
  const layers: tf.layers.Layer[] = [...model.layers];
  for (let i = 0; i < layers.length; i++) {
    const layer = layers[i]!;
    const nested = (layer as unknown as { layers?: tf.layers.Layer[] }).layers;
    if (Array.isArray(nested)) layers.push(...nested);
    const lists = layer as unknown as LayerWeightLists;
    const moving = lists._trainableWeights.filter((w) => wanted.has(w.originalName));
    if (moving.length === 0) continue;
    lists._trainableWeights = lists._trainableWeights.filter((w) => !wanted.has(w.originalName));
    for (const w of moving) {
      w.trainable = false;
      lists._nonTrainableWeights.push(w);
    }
  }
}

/** Loads a tfjs layers model through `handler`, with `completeBatchNorm` applied and the filled weights constant. */
export async function loadLayersModelWithCompleteBatchNorm(handler: tf.io.IOHandler): Promise<{ model: tf.LayersModel; filled: string[] }> {
  if (!handler.load) throw new DptrainError('E_MODEL', 'the model handler has no load()');
  const { artifacts, filled } = completeBatchNorm(await handler.load());
  const model = await tf.loadLayersModel({ load: async () => artifacts });
  makeConstant(model, filled);
  return { model, filled };
}
