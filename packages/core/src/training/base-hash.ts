import * as tf from '@tensorflow/tfjs';
import type { RunConfig } from '../config.js';
import { createBackbone } from '../models/backbone.js';
import { hashBackboneWeights } from './replica.js';

/**
 * The hash of a run's frozen base, computed the way every worker computes it (`hashBackboneWeights` of the backbone
 * built from `config.backbone` with the run's seed), so that the coordinator holds the reference itself and never
 * takes it from whichever worker joins first. Builds the backbone once and disposes of it; also says where its weights came from ('random', or the file).
 */
export async function computeBaseHash(config: RunConfig, onWarning?: (message: string) => void): Promise<{ hash: string; weightsSource: string }> {
  await tf.ready(); // whichever backend this process registered (the wasm one initialises asynchronously)
  const backbone = await createBackbone(config.backbone, { seed: config.seed, ...(onWarning ? { onWarning } : {}) });
  try {
    return { hash: hashBackboneWeights(backbone), weightsSource: backbone.weightsSource };
  } finally {
    backbone.model.dispose();
  }
}
