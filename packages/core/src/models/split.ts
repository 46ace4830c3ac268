import type * as tf from '@tensorflow/tfjs';
import { DptrainError } from '../errors.js';
import { ancestorsInOrder, singleTensorBoundaries } from './graph.js';

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
 * - 'last:K': the last K layers up to the cut (counted back from the cut, the input layer excluded).
 * When that boundary is crossed by a residual connection, it moves back (more layers train) to the nearest
 * single-tensor boundary, with a warning saying so.
 */
export function resolveSplit(backbone: tf.LayersModel, cut: string, unfreeze: string | undefined): PhaseSplit {
  const order = ancestorsInOrder(backbone, cut);
  if (unfreeze === undefined || unfreeze === '' || unfreeze === 'none' || unfreeze === 'last:0') {
    return { boundary: cut, trainableLayers: [] };
  }
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
      const tail = order.slice(-6).map((l) => l.name).join(', ');
      throw new DptrainError('E_MODEL', `unfreeze "${unfreeze}": no layer up to ${cut} has a name starting with it (last layers: ${tail}); use a prefix or last:K`);
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

/** How many numbered blocks phase 2 unfreezes by default in a backbone without VGG's 'block5'. */
export const DEFAULT_UNFREEZE_BLOCKS = 3;

/**
 * A default for what phase 2 unfreezes in a backbone whose layer names are not VGG's: the prefix of the
 * `blocks`-th numbered block counted back from the cut, so that block and everything after it train
 * (MobileNetV2: 'block_14', i.e. blocks 14-16 + Conv_1, the blocks at the last resolution after the stride-2
 * block 13; ResNet50: 'conv5_block1'). Fewer numbered blocks: the first of them; none: 'last:4'.
 * Measured on the real scenes with MobileNetV2: block_14 gave 81.0 % test accuracy, block_16 alone 78.8 %.
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
  return seen.length > 0 ? seen[seen.length - 1]! : 'last:4';
}

/** True when some layer up to the cut has a name starting with `prefix`. */
export function hasPrefix(backbone: tf.LayersModel, cut: string, prefix: string): boolean {
  return ancestorsInOrder(backbone, cut).some((l) => l.name.startsWith(prefix));
}
