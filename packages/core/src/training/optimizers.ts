import { PHASE_DEFAULTS } from '../config.js';
import { DptrainError } from '../errors.js';
import { adamKernel } from './native-adam.js';

export { type AdamKernel, hasAdamKernel, setAdamKernel, useNativeOptimizer } from './native-adam.js';

/** Serialisable optimizer state (Float32Arrays are stored as binary blobs in checkpoints). */
export interface OptimizerState {
  kind: 'adam' | 'sgd';
  learningRate: number;
  /** Number of updates applied so far. */
  iterations: number;
  /** Per-weight slots (Adam: m, v; SGD with momentum: velocity). */
  slots: Record<string, Float32Array>;
}

/** An optimizer over one flat Float32Array of weights (the concatenated trainable variables). */
export interface FlatOptimizer {
  /** Current learning rate (settable, e.g. by ReduceLROnPlateau). */
  learningRate: number;
  /** Updates applied so far. */
  readonly iterations: number;
  /** Applies one update in place: `weights` is modified. The same bits as `beginStep(); stepRange(weights, gradients, 0)`. */
  step(weights: Float32Array, gradients: Float32Array): void;
  /**
   * Starts one update that `stepRange` then applies range by range (buckets, shards): advances the step counter
   * and the bias corrections, once per step, whatever the number of ranges.
   */
  beginStep(): void;
  /**
   * Applies the update begun by `beginStep` to the elements [offset, offset + gradients.length) of the flat
   * vector, whose views `weights` and `gradients` are (same length). Each element is updated exactly as `step`
   * would, so updating every range once gives `step`'s bits. A refused range (E_OPTIMIZER_NONFINITE) is left
   * unchanged, weights and state; ranges updated before it stay updated.
   */
  stepRange(weights: Float32Array, gradients: Float32Array, offset: number): void;
  exportState(): OptimizerState;
  importState(state: OptimizerState): void;
}

export interface AdamOptions {
  /** Learning rate. Default: the head phase's (PHASE_DEFAULTS, 1e-3 as Keras's Adam). */
  learningRate?: number;
  /** Decay of the first moment. Default 0.9. */
  beta1?: number;
  /** Decay of the second moment. Default 0.999. */
  beta2?: number;
  /** Keras epsilon (added to sqrt(v) before the bias-corrected step). Default 1e-7. */
  epsilon?: number;
  /** Decoupled weight decay, applied before the update: w -= lr · wd · w (Keras 3 `weight_decay`, AdamW). Default 0. */
  weightDecay?: number;
}

/** Decoupled weight decay (Keras 3 / PyTorch AdamW): w -= lr · wd · w, in place, before the optimizer's update. */
export function applyWeightDecay(weights: Float32Array, learningRate: number, weightDecay: number): void {
  if (weightDecay === 0) return;
  const f = learningRate * weightDecay;
  for (let i = 0; i < weights.length; i++) weights[i] = (weights[i] as number) - f * (weights[i] as number);
}

/** True when `x` rounds to a finite float32. */
function finite32(x: number): boolean {
  return Number.isFinite(Math.fround(x));
}

function nonFiniteState(i: number, gradient: number): DptrainError {
  return new DptrainError(
    'E_OPTIMIZER_NONFINITE',
    `adam: the update would make weight ${i}'s state non-finite (gradient ${gradient}); refused, the weights and optimizer state are unchanged`,
  );
}

function checkLengths(weights: Float32Array, gradients: Float32Array): void {
  if (weights.length !== gradients.length) {
    throw new DptrainError('E_GRADIENT_SHAPE', `optimizer: gradient has ${gradients.length} values, weights have ${weights.length}`);
  }
}

/**
 * Adam with Keras semantics: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g²;
 * w -= lr · sqrt(1-b2^t)/(1-b1^t) · m / (sqrt(v) + eps).
 * (tf.train.adam adds eps to sqrt(v̂) instead; the two agree to within eps-sized terms.)
 */
export class AdamOptimizer implements FlatOptimizer {
  learningRate: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  readonly weightDecay: number;
  private t = 0;
  private m: Float32Array | undefined;
  private v: Float32Array | undefined;
  /** The bias-corrected learning rate of the step begun by beginStep. */
  private lrT: number | undefined;

  constructor(options: AdamOptions = {}) {
    this.learningRate = options.learningRate ?? PHASE_DEFAULTS.headPhase.learningRate;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-7;
    this.weightDecay = options.weightDecay ?? 0;
  }

  get iterations(): number {
    return this.t;
  }

  step(weights: Float32Array, gradients: Float32Array): void {
    checkLengths(weights, gradients);
    if (this.m && this.m.length !== weights.length && this.t > 0) {
      throw new DptrainError('E_GRADIENT_SHAPE', `adam: state has ${this.m.length} slots, weights have ${weights.length}`);
    }
    if (this.m && this.m.length !== weights.length) this.m = undefined;
    this.beginStep();
    try {
      this.stepRange(weights, gradients, 0);
    } catch (err) {
      this.t -= 1; // a refused whole step leaves the optimizer as it was
      this.lrT = undefined;
      throw err;
    }
  }

  beginStep(): void {
    this.t += 1;
    this.lrT = (this.learningRate * Math.sqrt(1 - Math.pow(this.beta2, this.t))) / (1 - Math.pow(this.beta1, this.t));
  }

  /** The moments' views over [offset, end), growing them (zeros) when they are shorter. */
  private slots(offset: number, end: number): { m: Float32Array; v: Float32Array } {
    if (!this.m || !this.v || this.m.length < end) {
      const m = new Float32Array(end);
      const v = new Float32Array(end);
      if (this.m && this.v) {
        m.set(this.m);
        v.set(this.v);
      }
      this.m = m;
      this.v = v;
    }
    return { m: this.m.subarray(offset, end), v: this.v.subarray(offset, end) };
  }

  stepRange(weights: Float32Array, gradients: Float32Array, offset: number): void {
    checkLengths(weights, gradients);
    const lrT = this.lrT;
    if (lrT === undefined) throw new DptrainError('E_INTERNAL', 'adam: stepRange before beginStep (internal error)');
    const { m, v } = this.slots(offset, offset + weights.length);
    const b1 = this.beta1;
    const b2 = this.beta2;
    const eps = this.epsilon;
    const decay = this.learningRate * this.weightDecay;
    const kernel = adamKernel();
    // Refuse an update that would make any state non-finite before writing anything (such a weight would never
    // move again). The compiled kernel checks by itself; with weight decay (applied first) the check runs here.
    if (!kernel || decay !== 0) {
      for (let i = 0; i < weights.length; i++) {
        const g = gradients[i] as number;
        const mi = b1 * (m[i] as number) + (1 - b1) * g;
        const vi = b2 * (v[i] as number) + (1 - b2) * g * g;
        const w = Math.fround((weights[i] as number) - decay * (weights[i] as number));
        if (!finite32(mi) || !finite32(vi) || !finite32(w - (lrT * mi) / (Math.sqrt(vi) + eps))) throw nonFiniteState(offset + i, g);
      }
    }
    applyWeightDecay(weights, this.learningRate, this.weightDecay);
    if (kernel) {
      const bad = kernel(weights, gradients, m, v, lrT, b1, b2, eps);
      if (bad >= 0) throw nonFiniteState(offset + bad, gradients[bad] as number);
      return;
    }
    for (let i = 0; i < weights.length; i++) {
      const g = gradients[i] as number;
      const mi = b1 * (m[i] as number) + (1 - b1) * g;
      const vi = b2 * (v[i] as number) + (1 - b2) * g * g;
      m[i] = mi;
      v[i] = vi;
      weights[i] = (weights[i] as number) - (lrT * mi) / (Math.sqrt(vi) + eps);
    }
  }

  exportState(): OptimizerState {
    const slots: Record<string, Float32Array> = {};
    if (this.m && this.v) {
      slots.m = this.m.slice();
      slots.v = this.v.slice();
    }
    return { kind: 'adam', learningRate: this.learningRate, iterations: this.t, slots };
  }

  importState(state: OptimizerState): void {
    if (state.kind !== 'adam') throw new DptrainError('E_CHECKPOINT', `optimizer state is '${state.kind}', expected 'adam'`);
    this.learningRate = state.learningRate;
    this.t = state.iterations;
    this.lrT = undefined;
    this.m = state.slots.m ? state.slots.m.slice() : undefined;
    this.v = state.slots.v ? state.slots.v.slice() : undefined;
  }
}

export interface SgdOptions {
  /** Learning rate. Default 0.01. */
  learningRate?: number;
  /** Momentum (Keras semantics: v = μ v - lr g; w += v). Default 0. */
  momentum?: number;
  /** Nesterov momentum (Keras: v = μ v - lr g; w += μ v - lr g). Default false. */
  nesterov?: boolean;
  /** Decoupled weight decay, applied before the update (see applyWeightDecay). Default 0. */
  weightDecay?: number;
}

/** Plain SGD, optionally with (Keras-style) momentum. */
export class SgdOptimizer implements FlatOptimizer {
  learningRate: number;
  readonly momentum: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;
  private t = 0;
  private velocity: Float32Array | undefined;

  constructor(options: SgdOptions = {}) {
    this.learningRate = options.learningRate ?? 0.01;
    this.momentum = options.momentum ?? 0;
    this.nesterov = options.nesterov ?? false;
    this.weightDecay = options.weightDecay ?? 0;
  }

  get iterations(): number {
    return this.t;
  }

  step(weights: Float32Array, gradients: Float32Array): void {
    checkLengths(weights, gradients);
    if (this.velocity && this.velocity.length !== weights.length) this.velocity = undefined;
    this.beginStep();
    this.stepRange(weights, gradients, 0);
  }

  beginStep(): void {
    this.t += 1;
  }

  stepRange(weights: Float32Array, gradients: Float32Array, offset: number): void {
    checkLengths(weights, gradients);
    applyWeightDecay(weights, this.learningRate, this.weightDecay);
    const lr = this.learningRate;
    if (this.momentum === 0) {
      for (let i = 0; i < weights.length; i++) weights[i] = (weights[i] as number) - lr * (gradients[i] as number);
      return;
    }
    const end = offset + weights.length;
    if (!this.velocity || this.velocity.length < end) {
      const grown = new Float32Array(end);
      if (this.velocity) grown.set(this.velocity);
      this.velocity = grown;
    }
    const vel = this.velocity.subarray(offset, end);
    const mu = this.momentum;
    for (let i = 0; i < weights.length; i++) {
      const g = gradients[i] as number;
      const vi = mu * (vel[i] as number) - lr * g;
      vel[i] = vi;
      weights[i] = (weights[i] as number) + (this.nesterov ? mu * vi - lr * g : vi);
    }
  }

  exportState(): OptimizerState {
    const slots: Record<string, Float32Array> = {};
    if (this.velocity) slots.velocity = this.velocity.slice();
    return { kind: 'sgd', learningRate: this.learningRate, iterations: this.t, slots };
  }

  importState(state: OptimizerState): void {
    if (state.kind !== 'sgd') throw new DptrainError('E_CHECKPOINT', `optimizer state is '${state.kind}', expected 'sgd'`);
    this.learningRate = state.learningRate;
    this.t = state.iterations;
    this.velocity = state.slots.velocity ? state.slots.velocity.slice() : undefined;
  }
}

/** Builds an optimizer from its exported state (for resume). */
export function optimizerFromState(state: OptimizerState): FlatOptimizer {
  const opt: FlatOptimizer = state.kind === 'adam' ? new AdamOptimizer() : new SgdOptimizer();
  opt.importState(state);
  return opt;
}

/** What {@link createOptimizer} needs: the run config's optimizer settings. */
export interface OptimizerChoice {
  optimizer: 'adam' | 'adamw' | 'sgd';
  /** Default: 0.004 for adamw (Keras' AdamW default), else 0. */
  weightDecay?: number | undefined;
  momentum: number;
  nesterov: boolean;
}

/** Keras' AdamW default weight decay. */
export const ADAMW_DEFAULT_WEIGHT_DECAY = 0.004;

/** The optimizer a run config asks for, at `learningRate`. */
export function createOptimizer(choice: OptimizerChoice, learningRate: number): FlatOptimizer {
  if (choice.optimizer === 'sgd') {
    return new SgdOptimizer({ learningRate, momentum: choice.momentum, nesterov: choice.nesterov, weightDecay: choice.weightDecay ?? 0 });
  }
  const weightDecay = choice.weightDecay ?? (choice.optimizer === 'adamw' ? ADAMW_DEFAULT_WEIGHT_DECAY : 0);
  return new AdamOptimizer({ learningRate, weightDecay });
}
