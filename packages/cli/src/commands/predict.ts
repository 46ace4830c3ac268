import { Option, type Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import * as path from 'node:path';
import {
  DptrainError,
  ImageBatchLoader,
  argmaxRows,
  formatCulprits,
  loadPredictionSet,
  loadTrainedModel,
  writeSubmission,
  validateDataset,
  type Dataset,
  RUN_CONFIG_DEFAULTS,
  withRunPrecision,
  type Sample,
  startBackend,
} from '@dptrain/core';
import { BACKEND_CHOICES } from '../backend-flag.js';
import { precisionOption } from '../training-flags.js';
import { countFlag } from '../flag-count.js';
import { rebuildRunReplica, runModelDir } from '../run-model-files.js';

/** Defaults of `dptrain predict`. */
export const PREDICT_DEFAULTS = { batchSize: 16, out: 'submission.csv' } as const;

export interface PredictCommandValues {
  model: string;
  data?: string;
  out?: string;
  backend?: string;
  batchSize?: string;
  /** Leave out unreadable images (and bad test.csv rows) instead of failing. */
  skipBad?: boolean;
  /** --precision (fp32, bf16, auto); default: RunConfigSchema's. */
  precision?: 'fp32' | 'bf16' | 'auto';
}

/** Probabilities for samples, from a run directory's saved model. */
export interface LoadedPredictor {
  classNames: string[];
  predict(samples: Sample[]): Promise<Float32Array>;
  dispose(): void;
}

/**
 * Opens the model of a run: the full tfjs layers model (`model/model.json`) when present, else the frozen base
 * rebuilt from the run config plus the saved trainable weights (`model/dptrain-model.json` + `trainable.bin`).
 */
export async function openPredictor(runDir: string, batchSize: number = PREDICT_DEFAULTS.batchSize): Promise<LoadedPredictor> {
  const modelDir = runModelDir(runDir);
  if (existsSync(path.join(modelDir, 'model.json'))) {
    const m = await loadTrainedModel(modelDir);
    const loader = new ImageBatchLoader({ inputSize: m.metadata.inputSize, preprocess: m.metadata.preprocess });
    return {
      classNames: m.metadata.classNames,
      async predict(samples) {
        const c = m.metadata.classNames.length;
        const out = new Float32Array(samples.length * c);
        for (let i = 0; i < samples.length; i += batchSize) {
          const chunk = samples.slice(i, i + batchSize);
          const batch = await loader.loadBatch(chunk);
          out.set(m.predictPixels(batch.data, chunk.length), i * c);
        }
        return out;
      },
      dispose: () => m.dispose(),
    };
  }
  const { meta, replica } = await rebuildRunReplica(modelDir);
  return { classNames: meta.classNames, predict: (s) => replica.predict(s), dispose: () => replica.dispose() };
}

/** Samples for image files given on the command line. */
export function samplesForImages(files: string[]): Sample[] {
  return files.map((f, index) => {
    const p = path.resolve(f);
    if (!existsSync(p)) throw new DptrainError('E_DATA_IMAGE', `${f}: no such image file`);
    if (statSync(p).isDirectory()) throw new DptrainError('E_DATA_IMAGE', `${f} is a folder, not an image: give it as --data ${f}`);
    return { split: 'test', index, name: path.basename(p), path: p, label: -1 };
  });
}

/**
 * The samples of `predict --data DIR` (see loadPredictionSet), each image checked first: a bad one fails with
 * E_DATA_INVALID naming it, or is left out (and listed on stderr) with `skipBad`.
 */
export async function predictionSet(dir: string, skipBad: boolean, warn: (l: string) => void = (l) => void process.stderr.write(l + '\n')): Promise<Dataset> {
  const read = loadPredictionSet(dir);
  const { dataset, dropped } = await validateDataset(read, { skipBad });
  if (dropped.length > 0) warn(`dptrain: --skip-bad: left out ${dropped.length} bad input(s):\n${formatCulprits(dropped, dataset.root)}`);
  if (dataset.test.length === 0) throw new DptrainError('E_DATA_INVALID', `${dataset.root}: no readable image left to predict`);
  return dataset;
}

export async function predictCommand(
  images: string[],
  values: PredictCommandValues,
  write: (l: string) => void = (l) => void process.stdout.write(l + '\n'),
): Promise<void> {
  if (!values.data && images.length === 0)
    throw new DptrainError('E_CONFIG', 'predict: give --data DIR (a test.csv with SceneImages/, or a folder of images) or image files');
  if (values.data && images.length > 0) throw new DptrainError('E_CONFIG', 'predict: give either --data DIR or image files, not both');
  const batchSize = values.batchSize === undefined ? PREDICT_DEFAULTS.batchSize : countFlag(values.batchSize, '--batch-size', 1);
  // the data first: a folder with nothing to predict fails before the model loads
  const dataset = values.data ? await predictionSet(values.data, values.skipBad ?? false) : undefined;
  const samples = dataset ? dataset.test : samplesForImages(images);
  const backend = await startBackend(values.backend);
  const { precision } = await withRunPrecision({ precision: values.precision ?? RUN_CONFIG_DEFAULTS.precision }, backend.name);
  process.stderr.write(`dptrain: backend ${backend.name} (${backend.device}), precision ${precision}\n`);
  const predictor = await openPredictor(path.resolve(values.model), batchSize);
  try {
    const c = predictor.classNames.length;
    if (dataset) {
      const probs = await predictor.predict(samples);
      const out = path.resolve(values.out ?? PREDICT_DEFAULTS.out);
      await writeSubmission(out, samples, argmaxRows(probs, c), predictor.classNames, dataset.layout);
      write(`wrote ${out} (${samples.length} images)`);
      return;
    }
    const probs = await predictor.predict(samples);
    const preds = argmaxRows(probs, c);
    images.forEach((image, i) => {
      const k = preds[i] as number;
      write(`${image}\t${predictor.classNames[k]}\t${(probs[i * c + k] as number).toFixed(4)}`);
    });
  } finally {
    predictor.dispose();
  }
}

export function register(program: Command): void {
  program
    .command('predict')
    .description('predict with a trained run: a submission for --data DIR (its test.csv, or every image in it), or class + probability per image')
    .argument('[images...]', 'image files to classify (prints: file, class, probability)')
    .requiredOption('--model <run_dir>', 'run directory (or its model/ folder) written by dptrain train')
    .option('--data <dir>', 'folder to predict: its test.csv (images in SceneImages/), else every image file in it')
    .option('--out <file>', `submission file for --data (default: ${PREDICT_DEFAULTS.out})`)
    .option('--batch-size <n>', `images per forward pass (default: ${PREDICT_DEFAULTS.batchSize})`)
    .option('--skip-bad', 'leave out unreadable images and bad test.csv rows (listed on stderr) instead of failing')
    .addOption(new Option('--backend <name>', 'compute backend (default: first that loads)').choices(BACKEND_CHOICES))
    .addOption(precisionOption())
    .action(async (images: string[], opts: PredictCommandValues) => {
      await predictCommand(images, opts);
    });
}
