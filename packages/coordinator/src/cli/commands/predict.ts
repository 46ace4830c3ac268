import { Option, type Command } from 'commander';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import {
  DptrainError,
  ImageBatchLoader,
  argmaxRows,
  createReplica,
  loadDataset,
  loadRunModel,
  loadTrainedModel,
  writeSubmission,
  RUN_MODEL_DIR,
  type Sample,
} from '@dptrain/core';
import { BACKEND_CHOICES, startBackend } from '../backend-flag.js';

export interface PredictCommandValues {
  model: string;
  data?: string;
  out?: string;
  backend?: string;
  batchSize: string;
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
export async function openPredictor(runDir: string, batchSize = 16): Promise<LoadedPredictor> {
  const modelDir = existsSync(path.join(runDir, RUN_MODEL_DIR)) ? path.join(runDir, RUN_MODEL_DIR) : runDir;
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
  const { meta, weights } = await loadRunModel(modelDir);
  const replica = await createReplica({ ...meta.config, classNames: meta.classNames }, { cache: false });
  await replica.setPhase(meta.phase);
  replica.setWeights(weights);
  return { classNames: meta.classNames, predict: (s) => replica.predict(s), dispose: () => replica.dispose() };
}

/** Samples for image files given on the command line. */
export function samplesForImages(files: string[]): Sample[] {
  return files.map((f, index) => {
    const p = path.resolve(f);
    if (!existsSync(p)) throw new DptrainError('E_DATA_IMAGE', `${f}: no such image file`);
    return { split: 'test', index, name: path.basename(p), path: p, label: -1 };
  });
}

export async function predictCommand(images: string[], values: PredictCommandValues, write: (l: string) => void = (l) => void process.stdout.write(l + '\n')): Promise<void> {
  if (!values.data && images.length === 0) throw new DptrainError('E_CONFIG', 'predict: give --data DIR (its test.csv) or image files');
  if (values.data && images.length > 0) throw new DptrainError('E_CONFIG', 'predict: give either --data DIR or image files, not both');
  const backend = await startBackend(values.backend);
  process.stderr.write(`dptrain: backend ${backend.name} (${backend.device})\n`);
  const predictor = await openPredictor(path.resolve(values.model), Math.max(1, Number(values.batchSize) || 16));
  try {
    const c = predictor.classNames.length;
    if (values.data) {
      const dataset = loadDataset(values.data, { classNames: predictor.classNames });
      if (dataset.test.length === 0) throw new DptrainError('E_DATA_LAYOUT', `${values.data} has no test.csv (or it lists no images)`);
      const probs = await predictor.predict(dataset.test);
      const out = path.resolve(values.out ?? 'submission.csv');
      await writeSubmission(out, dataset.test, argmaxRows(probs, c), predictor.classNames, dataset.layout);
      write(`wrote ${out} (${dataset.test.length} images)`);
      return;
    }
    const samples = samplesForImages(images);
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
    .description("predict with a trained run: a submission for DIR's test.csv (--data), or class + probability per image")
    .argument('[images...]', 'image files to classify (prints: file, class, probability)')
    .requiredOption('--model <run_dir>', 'run directory (or its model/ folder) written by dptrain train')
    .option('--data <dir>', "data directory whose test.csv to predict")
    .option('--out <file>', 'submission file for --data', 'submission.csv')
    .option('--batch-size <n>', 'images per forward pass', '16')
    .addOption(new Option('--backend <name>', 'compute backend (default: first that loads)').choices(BACKEND_CHOICES))
    .action(async (images: string[], opts: PredictCommandValues) => {
      await predictCommand(images, opts);
    });
}
