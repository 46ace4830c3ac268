import { Option, type Command } from 'commander';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { DptrainError, exportKerasH5, loadTrainedModel, startBackend, type KerasExportSummary } from '@dptrain/core';
import { rebuildRunReplica, runModelDir } from '../run-model-files.js';
import { BACKEND_CHOICES } from '../backend-flag.js';

export interface ExportCommandValues {
  model: string;
  format: string;
  out: string;
  backend?: string;
}

/** Formats `dptrain export` writes. */
export const EXPORT_FORMATS = ['keras-h5'] as const;

/**
 * The whole trained model of a run as one tfjs LayersModel: `model/model.json` when the run wrote it, else the
 * frozen base rebuilt from the run config with the saved trainable weights set on top (as `predict` does).
 */
async function openRunLayersModel(runDir: string): Promise<{ model: tf.LayersModel; dispose(): void }> {
  const modelDir = runModelDir(runDir);
  if (existsSync(path.join(modelDir, 'model.json'))) {
    const m = await loadTrainedModel(modelDir);
    return { model: m.model, dispose: () => m.dispose() };
  }
  const { replica } = await rebuildRunReplica(modelDir);
  return { model: replica.model, dispose: () => replica.dispose() };
}

export async function exportCommand(values: ExportCommandValues): Promise<KerasExportSummary> {
  if (!(EXPORT_FORMATS as readonly string[]).includes(values.format)) {
    throw new DptrainError('E_CONFIG', `export: unknown --format '${values.format}' (one of ${EXPORT_FORMATS.join(', ')})`);
  }
  await startBackend(values.backend);
  const opened = await openRunLayersModel(path.resolve(values.model));
  try {
    return await exportKerasH5(opened.model, path.resolve(values.out));
  } finally {
    opened.dispose();
  }
}

export function register(program: Command): void {
  program
    .command('export')
    .description('write the trained model of a run (backbone + head) in a format other tools open: keras-h5 = a Keras HDF5 model file')
    .requiredOption('--model <run_dir>', 'run directory (or its model/ folder) written by dptrain train, single or coordinator')
    .addOption(new Option('--format <format>', 'output format').choices([...EXPORT_FORMATS]).default('keras-h5'))
    .requiredOption('--out <file>', 'file to write, e.g. model.h5')
    .addOption(new Option('--backend <name>', 'compute backend used to rebuild the model (default: first that loads)').choices(BACKEND_CHOICES))
    .action(async (opts: ExportCommandValues) => {
      const s = await exportCommand(opts);
      process.stdout.write(`wrote ${s.file}: ${s.layers} layers, ${s.weights} weights (Keras HDF5; keras.models.load_model(path, compile=False))\n`);
    });
}
