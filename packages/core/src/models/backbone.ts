import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import type { BackboneSpec } from '../config.js';
import { DptrainError } from '../errors.js';
import { loadLayersModelWithCompleteBatchNorm } from './complete-batchnorm.js';
import { fileSystemHandler, modelJsonPath } from './fs-io.js';
import { getLayer } from './graph.js';
import { TINY_VGG_WIDTHS, buildVgg } from './vgg16.js';
import { defaultVggWeightsPath, loadWeightsInto } from './weights.js';

/** A feature extractor: a layers model and the layer whose output feeds the head. */
export interface Backbone {
  /** The model; layers after `cut` (if any) are ignored. */
  model: tf.LayersModel;
  /** Layer whose output is the feature map. */
  cut: string;
  /** Input [height, width]. */
  inputSize: [number, number];
  /** Where the weights came from ('random' when randomly initialised). */
  weightsSource: string;
}

export interface CreateBackboneOptions {
  /** Seed of the random initialisation (VGG). Default 42. */
  seed?: number;
  /** Called with warnings (random init, …). Default console.warn. */
  onWarning?: (message: string) => void;
}

/** What a VGG16 (or tiny-vgg) backbone uses when the spec leaves it out: the Keras recipe's input size and cut. */
export const VGG16_DEFAULTS: { inputSize: [number, number]; cut: string } = { inputSize: [150, 150], cut: 'block5_pool' };

/**
 * Build or load the backbone described by `spec`:
 * - 'vgg16': Keras VGG16 without top; weights from spec.weights (.h5 or tfjs dir), else the Keras default file if it
 *   exists, else seeded random init with a warning;
 * - 'tiny-vgg': the same structure and names with small widths (random init unless spec.weights);
 * - 'layers': any tfjs layers model at spec.path, cut at spec.cut (default: its output layer), input size from the model.
 */
export async function createBackbone(spec: BackboneSpec, options: CreateBackboneOptions = {}): Promise<Backbone> {
  const warn = options.onWarning ?? ((m: string) => console.warn(`dptrain: ${m}`));
  const seed = options.seed ?? 42;
  if (spec.kind === 'layers') {
    if (!spec.path) throw new DptrainError('E_MODEL', 'backbone kind "layers" needs a path (--backbone PATH)');
    const json = modelJsonPath(spec.path);
    if (!fs.existsSync(json)) throw new DptrainError('E_MODEL', `backbone model not found: ${json}`);
    let model: tf.LayersModel;
    try {
      // BatchNorm layers without scale/offset get constant ones/zeros, or phase 2 cannot differentiate them
      model = (await loadLayersModelWithCompleteBatchNorm(fileSystemHandler(spec.path))).model;
    } catch (e) {
      if (e instanceof DptrainError) throw e;
      throw new DptrainError('E_MODEL', `cannot load tfjs layers model ${json}: ${(e as Error).message}`, undefined, { cause: e });
    }
    const cut = spec.cut ?? model.outputs[0]!.sourceLayer.name;
    getLayer(model, cut);
    const shape = model.inputs[0]!.shape;
    const h = shape[1];
    const w = shape[2];
    if (typeof h !== 'number' || typeof w !== 'number') {
      throw new DptrainError('E_MODEL', `${json}: input shape [${shape.join(', ')}] has no fixed height/width`);
    }
    if (spec.inputSize && (spec.inputSize[0] !== h || spec.inputSize[1] !== w)) {
      warn(`input size ${spec.inputSize.join('x')} ignored: the model ${json} takes ${h}x${w}`);
    }
    return { model, cut, inputSize: [h, w], weightsSource: json };
  }
  const tiny = spec.kind === 'tiny-vgg';
  const inputSize = spec.inputSize ?? VGG16_DEFAULTS.inputSize;
  const model = buildVgg({ inputSize, widths: tiny ? (spec.tinyWidths ?? TINY_VGG_WIDTHS) : undefined, seed, name: tiny ? 'tiny_vgg' : 'vgg16' });
  const cut = spec.cut ?? VGG16_DEFAULTS.cut;
  getLayer(model, cut);
  let weightsSource = 'random';
  const file = spec.weights ?? (tiny ? undefined : defaultVggWeightsPath());
  if (file !== undefined && (spec.weights !== undefined || fs.existsSync(file))) {
    await loadWeightsInto(model, file);
    weightsSource = file;
  } else if (!tiny) {
    warn(`no VGG16 weights (looked for ${file}); training starts from RANDOM initialisation (seed ${seed}) — expect poor accuracy. Pass --weights FILE.`);
  }
  return { model, cut, inputSize, weightsSource };
}
