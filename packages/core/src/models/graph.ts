import * as tf from '@tensorflow/tfjs';
import { DptrainError } from '../errors.js';

/** The parts of a tfjs layer graph node that the splitter reads. */
interface GraphNode {
  inboundLayers: tf.layers.Layer[];
  tensorIndices: number[];
}

function firstNode(layer: tf.layers.Layer): GraphNode | undefined {
  return (layer as unknown as { inboundNodes: GraphNode[] }).inboundNodes[0];
}

/** Layers feeding `layer` in its original (first) graph node. */
export function inboundLayers(layer: tf.layers.Layer): tf.layers.Layer[] {
  return firstNode(layer)?.inboundLayers ?? [];
}

/** The output of `layer` in its original graph (node 0), even after the layer has been re-applied elsewhere. */
export function originalOutput(layer: tf.layers.Layer): tf.SymbolicTensor {
  const out = layer.getOutputAt(0);
  if (Array.isArray(out)) {
    throw new DptrainError('E_MODEL', `layer ${layer.name} has ${out.length} outputs; a split point needs a single tensor`);
  }
  return out;
}

export function getLayer(model: tf.LayersModel, name: string): tf.layers.Layer {
  const layer = model.layers.find((l) => l.name === name);
  if (!layer) {
    const names = model.layers.map((l) => l.name);
    const shown = names.length > 12 ? [...names.slice(0, 4), '…', ...names.slice(-6)] : names;
    throw new DptrainError('E_MODEL', `model ${model.name} has no layer "${name}" (layers: ${shown.join(', ')})`);
  }
  return layer;
}

/**
 * Weights of `layer` that training can change (kernels, biases, BatchNorm gamma/beta; not moving statistics nor
 * constants), whatever its `trainable` flag says now.
 */
export function learnableWeightCount(layer: tf.layers.Layer): number {
  const own = (layer as unknown as { _trainableWeights?: tf.LayerVariable[] })._trainableWeights ?? [];
  return own.reduce((a, w) => a + w.shape.reduce((x: number, y) => x * (y ?? 1), 1), 0);
}

/**
 * Layer classes that join paths at the end of a block (residual, inception, dense). Multiply is not one: it gates
 * inside a block (squeeze-and-excitation, hard-swish).
 */
const MERGE_LAYERS = new Set(['Add', 'Concatenate', 'Average', 'Maximum', 'Minimum', 'Subtract']);

/** True when `layer` joins several paths at a block end (Add, Concatenate, …; not Multiply). */
export function isMergeLayer(layer: tf.layers.Layer): boolean {
  return MERGE_LAYERS.has(layer.getClassName()) && inboundLayers(layer).length > 1;
}

/**
 * The ancestors of `target` (itself included) in topological order, input layer first, following each layer's
 * original graph node. `model.layers` of a functional model is already topologically sorted.
 */
export function ancestorsInOrder(model: tf.LayersModel, target: string): tf.layers.Layer[] {
  const seen = new Set<string>();
  const stack = [getLayer(model, target)];
  while (stack.length > 0) {
    const l = stack.pop()!;
    if (seen.has(l.name)) continue;
    seen.add(l.name);
    stack.push(...inboundLayers(l));
  }
  return model.layers.filter((l) => seen.has(l.name));
}

/**
 * For each index i of the ordered ancestor list: true when the output of layer i alone determines everything after it,
 * i.e. no later layer reads a layer before i (no residual connection crosses the boundary).
 */
export function singleTensorBoundaries(order: tf.layers.Layer[]): boolean[] {
  const pos = new Map(order.map((l, i) => [l.name, i] as const));
  const minInbound = order.map((l, j) => Math.min(j, ...inboundLayers(l).map((p) => pos.get(p.name) ?? -1)));
  const valid = new Array<boolean>(order.length).fill(false);
  let suffixMin = Infinity;
  for (let i = order.length - 1; i >= 0; i--) {
    valid[i] = suffixMin >= i;
    suffixMin = Math.min(suffixMin, minInbound[i]!);
  }
  return valid;
}

/**
 * A new model from the output of `boundary` to the output of `target`, re-applying the existing layers on a new
 * Input so that the weights are shared with the original model.
 */
export function buildTail(model: tf.LayersModel, boundary: string, target: string, name: string): tf.LayersModel {
  const order = ancestorsInOrder(model, target);
  const b = order.findIndex((l) => l.name === boundary);
  if (b < 0) throw new DptrainError('E_MODEL', `layer ${boundary} does not lead to ${target}`);
  const valid = singleTensorBoundaries(order);
  if (!valid[b]) throw new DptrainError('E_MODEL', `layer ${boundary} is not a single-tensor boundary (a residual connection crosses it)`);
  const shape = originalOutput(order[b]!).shape.slice(1) as number[];
  const input = tf.input({ shape, name: `${name}_input` });
  const mapped = new Map<string, tf.SymbolicTensor>([[boundary, input]]);
  for (const layer of order.slice(b + 1)) {
    const node = firstNode(layer);
    const ins = (node?.inboundLayers ?? []).map((p, k) => {
      const t = mapped.get(p.name);
      if (!t) throw new DptrainError('E_MODEL', `layer ${layer.name} reads ${p.name}, which is before the boundary ${boundary}`);
      if ((node?.tensorIndices[k] ?? 0) !== 0)
        throw new DptrainError('E_MODEL', `layer ${layer.name} reads output ${node?.tensorIndices[k]} of ${p.name}; only single-output layers are supported`);
      return t;
    });
    const out = layer.apply(ins.length === 1 ? ins[0]! : ins) as tf.SymbolicTensor | tf.SymbolicTensor[];
    if (Array.isArray(out)) throw new DptrainError('E_MODEL', `layer ${layer.name} has several outputs; not supported`);
    mapped.set(layer.name, out);
  }
  return tf.model({ inputs: input, outputs: mapped.get(target)!, name });
}

/** The model from the original input to the output of `boundary` (shares weights). */
export function buildHeadless(model: tf.LayersModel, boundary: string, name: string): tf.LayersModel {
  return tf.model({ inputs: model.inputs, outputs: originalOutput(getLayer(model, boundary)), name });
}
