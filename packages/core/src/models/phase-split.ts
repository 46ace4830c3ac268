import type * as tf from '@tensorflow/tfjs';
import { DptrainError } from '../errors.js';
import { ancestorsInOrder, isMergeLayer, learnableWeightCount, singleTensorBoundaries } from './graph.js';

/** Where the frozen part ends for a phase. */
export interface PhaseSplit {
  /** Last frozen layer: its output is what the trainable part reads (and what the feature cache stores). */
  boundary: string;
  /** Backbone layers that train (after the boundary, up to and including the cut), in order. */
  trainableLayers: string[];
  /** Set when the requested split had to move (e.g. 'last:K' inside a residual block). */
  warning?: string;
}

/**
 * Resolve what phase 2 unfreezes, as a boundary layer of the backbone:
 * - a layer-name prefix ('block5'): everything from the first layer whose name starts with it up to the cut;
 * - 'last:K': the last K layers up to the cut (counted back from the cut, the input layer excluded);
 * - 'top:P%': the smallest tail holding at least P % of the backbone's learnable weights up to the cut, starting
 *   right after a block end (the Add or Concatenate that ends a residual, inception or dense block) when one is
 *   close enough (the tail then holds at most (100 + P) / 2 %), else right after the split point itself.
 * When a prefix or last:K boundary is crossed by a residual connection, it moves back (more layers train) to the
 * nearest single-tensor boundary, with a warning saying so.
 */
export function resolveSplit(backbone: tf.LayersModel, cut: string, unfreeze: string | undefined): PhaseSplit {
  const order = ancestorsInOrder(backbone, cut);
  if (unfreeze === undefined || unfreeze === '' || unfreeze === 'none' || unfreeze === 'last:0') {
    return { boundary: cut, trainableLayers: [] };
  }
  const top = /^top:(\d+(?:\.\d+)?)%$/.exec(unfreeze);
  if (top) return topFraction(order, Number(top[1]) / 100, unfreeze, cut);
  let wanted: number;
  const m = /^last:(\d+)$/.exec(unfreeze);
  if (m) {
    const k = Number(m[1]);
    wanted = order.length - 1 - k;
    if (wanted < 1) {
      throw new DptrainError('E_MODEL', `unfreeze "${unfreeze}": the backbone has only ${order.length - 1} layers up to ${cut}; at least one must stay frozen`);
    }
  } else {
    const first = order.findIndex((l) => l.name.startsWith(unfreeze));
    if (first < 0) {
      const tail = order
        .slice(-6)
        .map((l) => l.name)
        .join(', ');
      throw new DptrainError(
        'E_MODEL',
        `unfreeze "${unfreeze}": no layer up to ${cut} has a name starting with it (last layers: ${tail}); use a prefix, last:K or top:P%`,
      );
    }
    if (first < 2) throw new DptrainError('E_MODEL', `unfreeze "${unfreeze}" would unfreeze the whole backbone; at least one layer must stay frozen`);
    wanted = first - 1;
  }
  const valid = singleTensorBoundaries(order);
  let b = wanted;
  while (b > 0 && !valid[b]) b--;
  if (b < 1) throw new DptrainError('E_MODEL', `unfreeze "${unfreeze}": no single-tensor split point before ${order[wanted]!.name}`);
  const split: PhaseSplit = { boundary: order[b]!.name, trainableLayers: order.slice(b + 1).map((l) => l.name) };
  if (b !== wanted) {
    split.warning =
      `unfreeze "${unfreeze}": the split after ${order[wanted]!.name} would cut through a residual connection; ` +
      `moved back to after ${order[b]!.name} (${split.trainableLayers.length} layers train instead of ${order.length - 1 - wanted})`;
  }
  return split;
}

/**
 * 'top:P%' on the ordered ancestors of the cut: the latest split point whose tail holds at least `fraction` of the
 * learnable weights, moved back to the nearest block end (the output of a merge layer) unless that would train more
 * than (1 + fraction) / 2 of the weights.
 */
function topFraction(order: tf.layers.Layer[], fraction: number, unfreeze: string, cut: string): PhaseSplit {
  if (!(fraction > 0 && fraction < 1)) throw new DptrainError('E_MODEL', `unfreeze "${unfreeze}": P must be above 0 and below 100`);
  const weights = order.map(learnableWeightCount);
  const total = weights.reduce((a, b) => a + b, 0);
  if (total === 0) throw new DptrainError('E_MODEL', `unfreeze "${unfreeze}": the backbone has no learnable weights up to ${cut}`);
  const valid = singleTensorBoundaries(order);
  // tail[i]: weights of the layers after i
  const tail = new Array<number>(order.length).fill(0);
  for (let i = order.length - 2; i >= 0; i--) tail[i] = tail[i + 1]! + weights[i + 1]!;
  let last = -1;
  for (let i = order.length - 2; i >= 1; i--) {
    if (valid[i] && tail[i]! >= fraction * total) {
      last = i;
      break;
    }
  }
  if (last < 1) throw new DptrainError('E_MODEL', `unfreeze "${unfreeze}": no split point up to ${cut} leaves a frozen part (use a smaller P)`);
  // back to the nearest block end, unless that trains more than halfway from P to everything
  const cap = total * (fraction + (1 - fraction) / 2);
  let b = last;
  while (b >= 1 && tail[b]! <= cap && !(valid[b] && isMergeLayer(order[b]!))) b--;
  if (b < 1 || tail[b]! > cap) b = last; // no block end close enough (a plain chain): the split point itself
  return { boundary: order[b]!.name, trainableLayers: order.slice(b + 1).map((l) => l.name) };
}

/** Learnable weights of the backbone up to the cut, and of the layers a split trains. */
export function splitWeights(backbone: tf.LayersModel, cut: string, split: PhaseSplit): { trainable: number; total: number } {
  const order = ancestorsInOrder(backbone, cut);
  const training = new Set(split.trainableLayers);
  let trainable = 0;
  let total = 0;
  for (const l of order) {
    const n = learnableWeightCount(l);
    total += n;
    if (training.has(l.name)) trainable += n;
  }
  return { trainable, total };
}

/** What phase 2 unfreezes by default in a backbone without numbered blocks: the top half of its weights, cut at a merge point. */
export const DEFAULT_UNFREEZE_TOP = 'top:50%';

/** How many numbered blocks phase 2 unfreezes by default in a backbone without VGG's 'block5'. */
export const DEFAULT_UNFREEZE_BLOCKS = 3;

/**
 * A default for what phase 2 unfreezes in a backbone whose layer names are not VGG's: the prefix of the
 * `blocks`-th numbered block counted back from the cut, so that block and everything after it train
 * (MobileNetV2: 'block_14', i.e. blocks 14-16 + Conv_1, the blocks at the last resolution after the stride-2
 * block 13; ResNet50: 'conv5_block1'). Fewer numbered blocks: the first of them; none: DEFAULT_UNFREEZE_TOP.
 * Architectures with a measured default (MEASURED_UNFREEZE, MobileNetV2's block_10) do not use this guess.
 */
export function guessUnfreezeBlock(backbone: tf.LayersModel, cut: string, blocks = DEFAULT_UNFREEZE_BLOCKS): string {
  const order = ancestorsInOrder(backbone, cut);
  const seen: string[] = [];
  for (let i = order.length - 1; i > 0; i--) {
    const m = /^(.*?block_?\d+)(?:_|$)/.exec(order[i]!.name);
    if (m && !seen.includes(m[1]!)) {
      seen.push(m[1]!);
      if (seen.length === blocks) break;
    }
  }
  return seen.length > 0 ? seen[seen.length - 1]! : DEFAULT_UNFREEZE_TOP;
}

/**
 * Phase 2's default for architectures whose unfreeze point was measured (docs/training.md, "Real data"), each
 * recognised by one of its layers up to the cut: MobileNetV2 unfreezes from `block_10` (blocks 10-16 + Conv_1,
 * trained from cached `block_9_add` features), 89.6 % validation accuracy on the scenes against 86.3 % for the
 * generic guess (`block_14`) and 87.4 % for `block_12`.
 */
export const MEASURED_UNFREEZE: readonly { architecture: string; layer: string; unfreeze: string }[] = Object.freeze([
  { architecture: 'MobileNetV2', layer: 'block_16_project', unfreeze: 'block_10' },
]);

/** The measured default of the backbone's architecture (MEASURED_UNFREEZE), if it is one of them. */
export function measuredUnfreeze(backbone: tf.LayersModel, cut: string): { architecture: string; unfreeze: string } | undefined {
  const layers = ancestorsInOrder(backbone, cut);
  return MEASURED_UNFREEZE.find((k) => layers.some((l) => l.name === k.layer) && layers.some((l) => l.name.startsWith(`${k.unfreeze}_`)));
}

/** True when some layer up to the cut has a name starting with `prefix`. */
export function hasPrefix(backbone: tf.LayersModel, cut: string, prefix: string): boolean {
  return ancestorsInOrder(backbone, cut).some((l) => l.name.startsWith(prefix));
}

/** What phase 2 unfreezes in a run, and why when it is not what the config asked for. */
export interface UnfreezeChoice {
  /** The unfreeze setting to resolve (see resolveSplit). */
  unfreeze: string;
  /** Set when a default was guessed for a generic backbone: the sentence that says what trains instead. */
  guessed?: string;
}

/**
 * What phase 2 unfreezes: `wanted` (config.fineTunePhase.unfreeze). A generic backbone (kind 'layers') with none
 * set, or with the VGG default 'block5' that it lacks, gets its architecture's measured default (MEASURED_UNFREEZE)
 * or else guessUnfreezeBlock's (the last 3 numbered blocks, else the top half of its weights cut at a merge point),
 * with a sentence that says what trains. The one
 * home of this fallback (resolveRunConfig leaves `unfreeze` unset for non-VGG backbones).
 */
export function chooseUnfreeze(backbone: tf.LayersModel, cut: string, kind: string, wanted: string | undefined): UnfreezeChoice {
  const generic = kind === 'layers';
  if (!generic || (wanted !== undefined && (wanted !== 'block5' || hasPrefix(backbone, cut, wanted)))) return { unfreeze: wanted ?? 'block5' };
  const measured = measuredUnfreeze(backbone, cut);
  const guess = measured?.unfreeze ?? guessUnfreezeBlock(backbone, cut);
  const split = resolveSplit(backbone, cut, guess);
  const { trainable, total } = splitWeights(backbone, cut, split);
  const why = wanted === undefined ? 'no --unfreeze given' : "the backbone has no 'block5' layers";
  const which = measured ? ` (${measured.architecture}'s default)` : '';
  return {
    unfreeze: guess,
    guessed:
      `${why}; phase 2 unfreezes '${guess}'${which} instead: the layers after ${split.boundary} up to ${cut}, ` +
      `${trainable} of ${total} backbone weights (set fineTunePhase.unfreeze / --unfreeze to choose)`,
  };
}
