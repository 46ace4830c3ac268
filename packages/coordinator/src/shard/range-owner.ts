import {
  DptrainError,
  DEFAULT_BUCKET_FLOATS,
  bucketSumOfSquares,
  scaleRange,
  createOptimizer,
  mergeGradientTree,
  unpackGradients,
  type FlatOptimizer,
  type FloatRange,
  type MessageOf,
  type OptimizerChoice,
  type OptimizerState,
  type RangedGradient,
} from '@dptrain/core';

/** What a shard holds for the range it owns: the weights, the optimizer state, and the step's gradient ranges. */
export interface RangeSeed {
  generation: number;
  range: FloatRange;
  size: number;
  weights: Float32Array;
  optimizer: OptimizerState;
}

/** A part of a step, as the coordinator lists it in `shard_reduce`. */
export interface ReducePart {
  sender: string;
  request: number;
  start: number;
  end: number;
}

/**
 * The range k of the trainable vector that one shard owns: it keeps the gradient ranges senders send for each
 * step request, merges those the coordinator lists along the micro-batch tree (the same elementwise merge the
 * coordinator does over whole gradients, so the same bits), and updates its weights with its own optimizer
 * state (elementwise: the bits of those elements in a whole-vector step).
 */
export class RangeOwner {
  readonly range: FloatRange;
  readonly generation: number;
  readonly weights: Float32Array;
  private readonly optimizer: FlatOptimizer;
  /** Each part's range as it arrives (in pieces, in order): the values and how many are in. */
  private readonly received = new Map<string, { values: Float32Array; filled: number }>();
  private merged: Float32Array | undefined;

  constructor(seed: RangeSeed, choice: OptimizerChoice) {
    if (seed.weights.length !== seed.range.end - seed.range.start) {
      throw new DptrainError('E_GRADIENT_SHAPE', `shard seed: ${seed.weights.length} weights for the range ${seed.range.start}..${seed.range.end}`);
    }
    this.range = seed.range;
    this.generation = seed.generation;
    this.weights = seed.weights.slice();
    this.optimizer = createOptimizer(choice, seed.optimizer.learningRate);
    this.optimizer.importState(seed.optimizer);
  }

  get length(): number {
    return this.range.end - this.range.start;
  }

  /**
   * Stores a piece of a sender's gradient range (checked: offset, length, finite values; the pieces of a range come in
   * order, a streamed bucket each, or the whole range at once); throws a DptrainError naming the sender.
   */
  accept(sender: string, msg: MessageOf<'grad_range'>): void {
    const key = partKey(sender, msg.request);
    const got = this.received.get(key) ?? { values: new Float32Array(this.length), filled: 0 };
    const at = this.range.start + got.filled;
    if (msg.offset !== at || msg.gradients.length > this.range.end - at || msg.gradients.length === 0) {
      throw new DptrainError(
        'E_GRADIENT_SHAPE',
        `sender ${sender}: gradient piece [${msg.offset}, ${msg.offset + msg.gradients.length}), expected one from ${at} within this shard's ${this.range.start}..${this.range.end}`,
      );
    }
    got.values.set(unpackGradients(msg, msg.gradients.length, sender, msg.offset), got.filled);
    got.filled += msg.gradients.length;
    this.received.set(key, got);
  }

  /** True when the ranges of all these parts are in. */
  has(parts: readonly ReducePart[]): boolean {
    return parts.every((p) => this.complete(partKey(p.sender, p.request)));
  }

  /** Parts listed whose range has not arrived (whole). */
  missing(parts: readonly ReducePart[]): string[] {
    return parts.map((p) => partKey(p.sender, p.request)).filter((k) => !this.complete(k));
  }

  private complete(key: string): boolean {
    return this.received.get(key)?.filled === this.length;
  }

  /**
   * Merges the listed parts (a batch of `n`, micro-batch `microBatch`) along the tree; the other received ranges
   * are dropped. Returns the merged range's per-bucket sums of squares over the clipping buckets (fixed buckets of
   * DEFAULT_BUCKET_FLOATS from element 0, as clipByGlobalNorm sums them; a range that starts on one of their
   * boundaries gives exactly those buckets' sums, see ShardedClusterExecutor).
   */
  reduce(parts: readonly ReducePart[], n: number, microBatch: number): number[] {
    const owned = new Set<Float32Array>();
    const ranged: RangedGradient[] = parts.map((p) => {
      const g = this.complete(partKey(p.sender, p.request)) ? this.received.get(partKey(p.sender, p.request))!.values : undefined;
      if (!g) throw new DptrainError('E_SHARD_LOST', `shard ${this.range.start}..${this.range.end}: no gradient range from ${partKey(p.sender, p.request)}`);
      owned.add(g);
      return { gradients: g, loss: 0, count: p.end - p.start, correct: 0, start: p.start, end: p.end };
    });
    this.merged = mergeGradientTree(ranged, n, microBatch, owned).gradients;
    this.received.clear();
    return Array.from(bucketSumOfSquares(this.merged, DEFAULT_BUCKET_FLOATS));
  }

  /**
   * One optimizer step on the merged range: scaled by `scale` first when it is not 1 (clipping, each element rounded
   * once, as clipByGlobalNorm does), at `learningRate`, as update number `iterations` (checked against the state).
   */
  update(learningRate: number, iterations: number, scale: number): Float32Array {
    const g = this.merged;
    if (!g) throw new DptrainError('E_INTERNAL', 'shard update before its reduce');
    if (this.optimizer.iterations + 1 !== iterations) {
      throw new DptrainError('E_INTERNAL', `shard update ${iterations}: the range's optimizer is at update ${this.optimizer.iterations}`);
    }
    scaleRange(g, scale);
    this.optimizer.learningRate = learningRate;
    this.optimizer.step(this.weights, g);
    this.merged = undefined;
    return this.weights;
  }

  exportState(): OptimizerState {
    return this.optimizer.exportState();
  }
}

export function partKey(sender: string, request: number): string {
  return `${sender}#${request}`;
}
