import type * as tf from '@tensorflow/tfjs';
import { writeKerasModelH5, type H5Layer } from './keras-h5.js';

/** What {@link exportKerasH5} wrote. */
export interface KerasExportSummary {
  file: string;
  /** Layers in `layer_names`, weightless ones included. */
  layers: number;
  /** Weight values written, over all layers. */
  weights: number;
}

/** The layers of `model` with their weights under Keras' names (`<layer>/kernel:0`), in the model's weight order. */
export function kerasLayersOf(model: tf.LayersModel): H5Layer[] {
  return model.layers.map((layer) => ({
    name: layer.name,
    weights: layer.weights.map((v) => {
      const values = v.read().dataSync();
      return { name: `${v.originalName}:0`, shape: [...v.shape] as number[], values: values instanceof Float32Array ? values : Float32Array.from(values) };
    }),
  }));
}

/**
 * Writes `model` (backbone + head) as a Keras HDF5 model file, the format of Keras' `model.save('x.h5')` and
 * `ModelCheckpoint`: `model_config` is tfjs-layers' Keras-compatible JSON of the topology, and `model_weights`
 * has one group per layer with Keras' weight names. Load it with `keras.models.load_model(file, compile=False)`.
 */
export async function exportKerasH5(model: tf.LayersModel, file: string): Promise<KerasExportSummary> {
  const topology = model.toJSON(null, false) as unknown as { class_name: string; config: unknown; keras_version?: string; backend?: string };
  const layers = kerasLayersOf(model);
  await writeKerasModelH5(file, {
    modelConfig: { class_name: topology.class_name, config: topology.config },
    layers,
    kerasVersion: topology.keras_version ?? 'tfjs-layers',
    backend: 'tensorflow',
  });
  return { file, layers: layers.length, weights: layers.reduce((n, l) => n + l.weights.reduce((m, w) => m + w.values.length, 0), 0) };
}
