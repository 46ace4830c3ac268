import * as tf from '@tensorflow/tfjs';
import type { Backbone } from '../models/backbone.js';
import { buildHeadless, buildTail, getLayer, originalOutput } from '../models/graph.js';
import { HEAD_LAYERS, type Head } from '../models/head.js';
import { chooseUnfreeze, resolveSplit, type PhaseSplit } from '../models/phase-split.js';
import type { RunConfig } from '../config.js';
import type { WeightSpec } from './types.js';

/** The models of one phase's split: the frozen part up to the boundary, and the trainable tail (unfrozen block + head). */
export interface PhaseModels {
  split: PhaseSplit;
  frozen: tf.LayersModel;
  /**
   * Head phase with caching: the phase-2 boundary, whose output the frozen pass also stores so that phase 2 never
   * runs the frozen part again (VGG16: block4_pool, taken on the way to block5_pool).
   */
  secondary?: { boundary: string; frozen: tf.LayersModel };
  tail: tf.LayersModel;
  vars: tf.Variable[];
  spec: WeightSpec[];
}

/** Phase 2's split of the run's backbone (chooseUnfreeze, then resolveSplit); `onGuess` hears a guessed default. */
export function fineTuneSplit(config: RunConfig, backbone: Backbone, onGuess?: (message: string) => void): PhaseSplit {
  const choice = chooseUnfreeze(backbone.model, backbone.cut, config.backbone.kind, config.fineTunePhase.unfreeze);
  if (choice.guessed) onGuess?.(choice.guessed);
  return resolveSplit(backbone.model, backbone.cut, choice.unfreeze);
}

/**
 * Builds the models of `split`: the frozen part, the tail of `model` from the boundary, and (head phase, with a
 * cache and a phase 2 ahead) the two-output frozen part that also yields the phase-2 boundary's features.
 */
export function buildPhaseModels(model: tf.LayersModel, backbone: Backbone, split: PhaseSplit, next: PhaseSplit | undefined): PhaseModels {
  const frozen = buildHeadless(backbone.model, split.boundary, `frozen_${split.boundary}`);
  const tail = buildTail(model, split.boundary, HEAD_LAYERS.dense, `trainable_${split.boundary}`);
  const pm: PhaseModels = { split, frozen, tail, vars: [], spec: [] };
  if (next && next.boundary !== split.boundary) {
    const outs = [split.boundary, next.boundary].map((n) => originalOutput(getLayer(backbone.model, n)));
    pm.secondary = {
      boundary: next.boundary,
      frozen: tf.model({ inputs: backbone.model.inputs, outputs: outs, name: `frozen_${split.boundary}_${next.boundary}` }),
    };
  }
  return pm;
}

/** Makes the phase's tail (and the logits layer) the only trainable layers of `model`, and records their variables and spec. */
export function selectTrainable(model: tf.LayersModel, head: Head, pm: PhaseModels): void {
  const trainable = new Set([...pm.tail.layers.map((l) => l.name), HEAD_LAYERS.logits]);
  for (const l of model.layers) l.trainable = trainable.has(l.name);
  const lvars = [...pm.tail.trainableWeights, ...head.logits.trainableWeights];
  pm.vars = lvars.map((v) => v.read() as tf.Variable);
  pm.spec = lvars.map((v) => {
    const shape = v.shape as number[];
    return { name: v.originalName ?? v.name, shape: [...shape], size: shape.reduce((a, b) => a * b, 1) };
  });
}

/** The shape of one sample's features at `boundary` (without the batch axis). */
export function boundaryShape(backbone: Backbone, boundary: string): number[] {
  return originalOutput(getLayer(backbone.model, boundary)).shape.slice(1) as number[];
}
