import type { RunConfig } from '../config.js';
import { stratifiedSplit } from '../data/stratified-split.js';
import type { Sample } from '../data/types.js';
import { DptrainError } from '../errors.js';

/**
 * Keras' `class_weight`, 'balanced' as scikit-learn computes it: w_c = n / (C · n_c) over the training split, so
 * that every class weighs the same in the loss. A class without training samples gets weight 1.
 */
export function balancedClassWeights(labels: readonly number[], numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (const y of labels) counts[y] = (counts[y] ?? 0) + 1;
  return counts.map((c) => (c > 0 ? labels.length / (numClasses * c) : 1));
}

/**
 * The run config with `classWeight: 'auto'` replaced by the balanced weights of `train` (the training split), so
 * that every worker, the config file and the checkpoint carry the same numbers. An explicit list must have one
 * weight per class.
 */
export function resolveClassWeights(config: RunConfig, train: readonly Sample[], numClasses: number): RunConfig {
  const cw = config.classWeight;
  if (cw === 'none') return config;
  if (cw === 'auto')
    return {
      ...config,
      classWeight: balancedClassWeights(
        train.map((s) => s.label),
        numClasses,
      ),
    };
  if (cw.length !== numClasses) {
    throw new DptrainError('E_CONFIG', `--class-weight: ${cw.length} weight${cw.length === 1 ? '' : 's'} for ${numClasses} classes`);
  }
  return config;
}

/**
 * The same, before the data is validated (a coordinator, which sends the config to its workers as they join):
 * the training split is computed from the labelled samples as prepareTrainData will (same fraction and seed).
 * With --skip-bad, images dropped later are still counted here.
 */
export function resolveClassWeightsFromLabelled(config: RunConfig, labelled: readonly Sample[], numClasses: number): RunConfig {
  if (config.classWeight !== 'auto') return resolveClassWeights(config, [], numClasses);
  const split = stratifiedSplit(labelled, { fraction: config.validationSplit, seed: config.seed });
  return resolveClassWeights(config, split.train, numClasses);
}
