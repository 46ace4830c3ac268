import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { createReplica, loadRunModel, RUN_MODEL_DIR, type Dataset, type ModelReplica, type RunModelMeta } from '@dptrain/core';

/** The model folder of a run: `RUN/model/` when the run directory is given, else the folder itself. */
export function runModelDir(runDir: string): string {
  return existsSync(path.join(runDir, RUN_MODEL_DIR)) ? path.join(runDir, RUN_MODEL_DIR) : runDir;
}

/**
 * A run's model rebuilt as a replica (the frozen base from the run config, the saved trainable weights on top), for
 * runs without `model.json` (cluster runs). The class names come from the model: the training data is never read.
 */
export async function rebuildRunReplica(modelDir: string): Promise<{ meta: RunModelMeta; replica: ModelReplica }> {
  const { meta, weights } = await loadRunModel(modelDir);
  const noData: Dataset = { layout: 'folders', root: modelDir, classNames: meta.classNames, labelled: [], test: [], hash: '' };
  const replica = await createReplica({ ...meta.config, classNames: meta.classNames }, { cache: false, dataset: noData });
  await replica.setPhase(meta.phase);
  replica.setWeights(weights);
  return { meta, replica };
}
