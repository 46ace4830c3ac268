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
  /** Applies one update in place: `weights` is modified. */
  step(weights: Float32Array, gradients: Float32Array): void;
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
    if (!this.m || this.m.length !== weights.length) {
      if (this.m && this.t > 0) {
        throw new DptrainError('E_GRADIENT_SHAPE', `adam: state has ${this.m.length} slots, weights have ${weights.length}`);
      }
      this.m = new Float32Array(weights.length);
      this.v = new Float32Array(weights.length);
    }
    const m = this.m;
    const v = this.v as Float32Array;
    const t = this.t + 1;
    const b1 = this.beta1;
    const b2 = this.beta2;
    const lrT = (this.learningRate * Math.sqrt(1 - Math.pow(b2, t))) / (1 - Math.pow(b1, t));
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
        if (!finite32(mi) || !finite32(vi) || !finite32(w - (lrT * mi) / (Math.sqrt(vi) + eps))) throw nonFiniteState(i, g);
      }
    }
    applyWeightDecay(weights, this.learningRate, this.weightDecay);
    if (kernel) {
      const bad = kernel(weights, gradients, m, v, lrT, b1, b2, eps);
      if (bad >= 0) throw nonFiniteState(bad, gradients[bad] as number);
      this.t = t;
      return;
    }
    this.t = t;
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
    applyWeightDecay(weights, this.learningRate, this.weightDecay);
    this.t += 1;
    const lr = this.learningRate;
    if (this.momentum === 0) {
      for (let i = 0; i < weights.length; i++) weights[i] = (weights[i] as number) - lr * (gradients[i] as number);
      return;
    }
    if (!this.velocity || this.velocity.length !== weights.length) this.velocity = new Float32Array(weights.length);
    const vel = this.velocity;
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
