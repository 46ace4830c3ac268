import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { DptrainError } from '../errors.js';

/** File name of the single weights shard the handler writes. */
export const WEIGHTS_FILE = 'weights.bin';

/** The model.json path for a directory or a model.json path. */
export function modelJsonPath(p: string): string {
  return p.endsWith('.json') ? p : path.join(p, 'model.json');
}

/**
 * A tfjs IOHandler on the local file system (plain @tensorflow/tfjs has no file:// handler).
 * `load` reads model.json and every shard of its weightsManifest; `save` writes model.json + one weights.bin.
 * `target` is a model directory or a model.json path.
 */
export interface FileSystemHandler extends tf.io.IOHandler {
  load(): Promise<tf.io.ModelArtifacts>;
  save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult>;
}

export function fileSystemHandler(target: string): FileSystemHandler {
  const jsonPath = modelJsonPath(target);
  const dir = path.dirname(jsonPath);
  return {
    async load(): Promise<tf.io.ModelArtifacts> {
      let json: tf.io.ModelJSON;
      try {
        json = JSON.parse(await fs.promises.readFile(jsonPath, 'utf8')) as tf.io.ModelJSON;
      } catch (e) {
        throw new DptrainError('E_WEIGHTS', `cannot read tfjs model ${jsonPath}: ${(e as Error).message}`, undefined, { cause: e });
      }
      const weightSpecs: tf.io.WeightsManifestEntry[] = [];
      const buffers: Buffer[] = [];
      for (const group of json.weightsManifest ?? []) {
        for (const shard of group.paths) {
          const file = path.join(dir, shard);
          try {
            buffers.push(await fs.promises.readFile(file));
          } catch (e) {
            throw new DptrainError('E_WEIGHTS', `cannot read weight shard ${file} of ${jsonPath}: ${(e as Error).message}`, undefined, { cause: e });
          }
        }
        weightSpecs.push(...group.weights);
      }
      const all = Buffer.concat(buffers);
      const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer;
      const artifacts: tf.io.ModelArtifacts = { modelTopology: json.modelTopology, weightSpecs, weightData, format: json.format };
      if (json.generatedBy !== undefined) artifacts.generatedBy = json.generatedBy;
      if (json.convertedBy !== undefined) artifacts.convertedBy = json.convertedBy;
      if (json.userDefinedMetadata !== undefined) artifacts.userDefinedMetadata = json.userDefinedMetadata;
      if (json.trainingConfig !== undefined) artifacts.trainingConfig = json.trainingConfig;
      return artifacts;
    },
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      await fs.promises.mkdir(dir, { recursive: true });
      const data = artifacts.weightData === undefined ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
      await fs.promises.writeFile(path.join(dir, WEIGHTS_FILE), new Uint8Array(data));
      const json: Record<string, unknown> = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version_layers}`,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs ?? [] }],
      };
      if (artifacts.userDefinedMetadata !== undefined) json['userDefinedMetadata'] = artifacts.userDefinedMetadata;
      if (artifacts.trainingConfig !== undefined) json['trainingConfig'] = artifacts.trainingConfig;
      await fs.promises.writeFile(jsonPath, JSON.stringify(json));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },
  };
}
