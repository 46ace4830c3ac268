import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { RunConfigSchema, type RunConfig } from '../config.js';
import { DptrainError } from '../errors.js';
import type { PhaseName } from '../events/types.js';
import type { WeightSpec } from './types.js';
import { writeFileAtomic } from './atomic-write.js';

/**
 * The trained model of a run, as saved in `RUN_DIR/model/`. It works the same in process and in the
 * cluster, where the coordinator holds only the trainable weights: the frozen base is rebuilt from the
 * run config (backbone kind/path/weights, cut, input size), then the trainable weights (head, plus the
 * fine-tuned block) are set on top. Files:
 *  - `dptrain-model.json`: this metadata (config, class names, preprocessing, input size, phase, spec);
 *  - `trainable.bin`: the trainable weights, float32 little-endian, laid out as `spec`;
 *  - optionally a full tfjs layers model (`model.json` + shards) written by an `exportLayers` hook.
 */
export interface RunModelMeta {
  format: 'dptrain-run-model/1';
  config: RunConfig;
  classNames: string[];
  preprocess: RunConfig['preprocess'];
  /** Input size [height, width], when known. */
  inputSize?: [number, number];
  /** Phase whose trainable set `spec` describes. */
  phase: PhaseName;
  spec: WeightSpec[];
  /** File of the trainable weights, relative to the model directory. */
  weightsFile: string;
  /** Whether a tfjs layers `model.json` was written next to it. */
  layersModel: boolean;
}

export interface SaveRunOptions {
  /** Run directory; the model goes to `<runDir>/model/`. */
  runDir: string;
  config: RunConfig;
  classNames: string[];
  phase: PhaseName;
  spec: WeightSpec[];
  weights: Float32Array;
  /** Input size [h, w] to record. Default: config.backbone.inputSize. */
  inputSize?: [number, number];
  /** Optional hook that writes a full tfjs layers model (model.json + weights) into the model directory; may return false when it cannot. Default: none. */
  exportLayers?: (modelDir: string, metadata: Record<string, unknown>) => Promise<boolean | void>;
}

export const RUN_MODEL_DIR = 'model';
const META_FILE = 'dptrain-model.json';
const WEIGHTS_FILE = 'trainable.bin';

/** Saves the trained model of a run (see RunModelMeta). Returns the model directory. */
export async function saveRun(options: SaveRunOptions): Promise<string> {
  const dir = path.join(options.runDir, RUN_MODEL_DIR);
  await fs.mkdir(dir, { recursive: true });
  const expected = options.spec.reduce((s, w) => s + w.size, 0);
  if (expected !== options.weights.length) {
    throw new DptrainError('E_WEIGHTS', `saveRun: ${options.weights.length} weights for a spec of ${expected}`);
  }
  const inputSize = options.inputSize ?? options.config.backbone.inputSize;
  let layersModel = false;
  if (options.exportLayers) {
    const wrote = await options.exportLayers(dir, {
      classNames: options.classNames,
      preprocess: options.config.preprocess,
      inputSize,
      phase: options.phase,
    });
    layersModel = wrote !== false;
  }
  const w = options.weights;
  await writeFileAtomic(path.join(dir, WEIGHTS_FILE), new Uint8Array(w.buffer, w.byteOffset, w.byteLength));
  const meta: RunModelMeta = {
    format: 'dptrain-run-model/1',
    config: options.config,
    classNames: options.classNames,
    preprocess: options.config.preprocess,
    ...(inputSize ? { inputSize } : {}),
    phase: options.phase,
    spec: options.spec,
    weightsFile: WEIGHTS_FILE,
    layersModel,
  };
  await writeFileAtomic(path.join(dir, META_FILE), JSON.stringify(meta, null, 2));
  return dir;
}

/** Reads a model saved by `saveRun`; `location` is the run directory or its `model/` directory. */
export async function loadRunModel(location: string): Promise<{ meta: RunModelMeta; weights: Float32Array; dir: string }> {
  let dir = path.resolve(location);
  try {
    await fs.access(path.join(dir, META_FILE));
  } catch {
    dir = path.join(dir, RUN_MODEL_DIR);
  }
  const metaFile = path.join(dir, META_FILE);
  let meta: RunModelMeta;
  try {
    meta = JSON.parse(await fs.readFile(metaFile, 'utf8')) as RunModelMeta;
  } catch (e) {
    throw new DptrainError('E_MODEL', `${location} holds no dptrain model (${metaFile}: ${(e as Error).message})`);
  }
  if (meta.format !== 'dptrain-run-model/1') throw new DptrainError('E_MODEL', `${metaFile}: unknown format '${String(meta.format)}'`);
  meta.config = RunConfigSchema.parse(meta.config);
  const buf = await fs.readFile(path.join(dir, meta.weightsFile));
  const weights = new Float32Array(buf.byteLength / 4);
  new Uint8Array(weights.buffer).set(buf);
  const expected = meta.spec.reduce((s, w) => s + w.size, 0);
  if (weights.length !== expected)
    throw new DptrainError('E_WEIGHTS', `${path.join(dir, meta.weightsFile)}: ${weights.length} weights, spec needs ${expected}`);
  return { meta, weights, dir };
}
