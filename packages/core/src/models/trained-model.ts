import * as tf from '@tensorflow/tfjs';
import type { PreprocessMode } from '../config.js';
import { DptrainError } from '../errors.js';
import { fileSystemHandler, modelJsonPath } from './fs-io.js';

/** What `dptrain predict` needs besides the weights; stored in model.json's userDefinedMetadata.dptrain. */
export interface TrainedModelMetadata {
  classNames: string[];
  preprocess: PreprocessMode;
  /** Input [height, width]. */
  inputSize: [number, number];
  /** Backbone kind or path it was trained from. */
  backbone: string;
  /** Cut layer of the backbone. */
  cut: string;
  /** Test-time augmentation predictPixels applies ('flip': mean with the mirror image). Absent: 'none'. */
  tta?: 'none' | 'flip';
}

export interface SaveTrainedModelArgs extends TrainedModelMetadata {
  /** Input → probabilities. */
  model: tf.LayersModel;
}

/** Save a trained model (tfjs layers format: model.json + weights.bin) with its metadata. */
export async function saveTrainedModel(dir: string, args: SaveTrainedModelArgs): Promise<void> {
  const { model, ...meta } = args;
  model.setUserDefinedMetadata({ dptrain: meta as unknown as Record<string, unknown> } as Record<string, unknown>);
  await model.save(fileSystemHandler(dir), { includeOptimizer: false });
}

/** A model loaded back for prediction. */
export interface TrainedModel {
  model: tf.LayersModel;
  metadata: TrainedModelMetadata;
  /** Probabilities [n, C] for preprocessed images [n, h, w, 3] (row-major Float32Array), with the model's TTA. */
  predictPixels(data: Float32Array, n: number): Float32Array;
  dispose(): void;
}

/** Load a model saved by saveTrainedModel (a run directory's model folder, or its model.json). */
export async function loadTrainedModel(dir: string): Promise<TrainedModel> {
  let model: tf.LayersModel;
  try {
    model = await tf.loadLayersModel(fileSystemHandler(dir));
  } catch (e) {
    if (e instanceof DptrainError) throw e;
    throw new DptrainError('E_MODEL', `cannot load trained model ${modelJsonPath(dir)}: ${(e as Error).message}`, undefined, { cause: e });
  }
  const meta = (model.getUserDefinedMetadata() as { dptrain?: TrainedModelMetadata } | undefined)?.dptrain;
  if (!meta || !Array.isArray(meta.classNames) || !Array.isArray(meta.inputSize)) {
    model.dispose();
    throw new DptrainError('E_MODEL', `${modelJsonPath(dir)} has no dptrain metadata (class names, preprocessing, input size): not a dptrain model`);
  }
  const [h, w] = meta.inputSize;
  return {
    model,
    metadata: meta,
    predictPixels(data: Float32Array, n: number): Float32Array {
      return tf.tidy(() => {
        const x = tf.tensor4d(data, [n, h, w, 3]);
        const p = model.predict(x) as tf.Tensor;
        const probs = meta.tta === 'flip' ? p.add(model.predict(tf.reverse(x, 2)) as tf.Tensor).mul(0.5) : p;
        return probs.dataSync() as Float32Array;
      });
    },
    dispose: () => model.dispose(),
  };
}
