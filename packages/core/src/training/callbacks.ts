import type { RunEvent } from '../events/types.js';

/** Figures of one finished epoch, handed to `onEpochEnd` (Keras `logs`). */
export interface EpochLogs {
  trainLoss: number;
  trainAccuracy: number;
  valLoss: number;
  valAccuracy: number;
  learningRate: number;
}

/** Figures of one finished step, handed to `onBatchEnd`. */
export interface BatchLogs {
  loss: number;
  samples: number;
  step: number;
}

/** What a callback may touch: the trainable weights, the learning rate, the stop flag and the event stream. */
export interface TrainingControl {
  getWeights(): Float32Array;
  setWeights(weights: Float32Array): Promise<void>;
  getLearningRate(): number;
  setLearningRate(lr: number): void;
  /** Set to true to end the phase after the current epoch (Keras `model.stopTraining`). */
  stopTraining: boolean;
  emit(event: RunEvent): void;
  /** Time source for emitted events. */
  now(): number;
}

/** A training callback in the tfjs-layers style; every hook is optional. State may be checkpointed. */
export interface TrainingCallback {
  /** Name used as the key of this callback's state in checkpoints. */
  readonly name: string;
  setControl?(control: TrainingControl): void;
  onTrainBegin?(): Promise<void> | void;
  onEpochBegin?(epoch: number): Promise<void> | void;
  /** Before step `batch` (0-based within the epoch `logs.epoch` of the phase) computes its gradients. */
  onBatchBegin?(batch: number, logs: { epoch: number }): Promise<void> | void;
  onBatchEnd?(batch: number, logs: BatchLogs): Promise<void> | void;
  onEpochEnd?(epoch: number, logs: EpochLogs): Promise<void> | void;
  onTrainEnd?(): Promise<void> | void;
  exportState?(): unknown;
  importState?(state: unknown): void;
}

/** Runs a list of callbacks in order. */
export class CallbackList {
  constructor(readonly callbacks: TrainingCallback[]) {}
  setControl(control: TrainingControl): void {
    for (const c of this.callbacks) c.setControl?.(control);
  }
  async onTrainBegin(): Promise<void> {
    for (const c of this.callbacks) await c.onTrainBegin?.();
  }
  async onEpochBegin(epoch: number): Promise<void> {
    for (const c of this.callbacks) await c.onEpochBegin?.(epoch);
  }
  async onBatchBegin(batch: number, logs: { epoch: number }): Promise<void> {
    for (const c of this.callbacks) await c.onBatchBegin?.(batch, logs);
  }
  async onBatchEnd(batch: number, logs: BatchLogs): Promise<void> {
    for (const c of this.callbacks) await c.onBatchEnd?.(batch, logs);
  }
  async onEpochEnd(epoch: number, logs: EpochLogs): Promise<void> {
    for (const c of this.callbacks) await c.onEpochEnd?.(epoch, logs);
  }
  async onTrainEnd(): Promise<void> {
    for (const c of this.callbacks) await c.onTrainEnd?.();
  }
  exportState(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const c of this.callbacks) if (c.exportState) out[c.name] = c.exportState();
    return out;
  }
  importState(state: Record<string, unknown>): void {
    for (const c of this.callbacks) if (c.importState && state[c.name] !== undefined) c.importState(state[c.name]);
  }
}

abstract class ControlledCallback implements TrainingCallback {
  abstract readonly name: string;
  protected control: TrainingControl | undefined;
  setControl(control: TrainingControl): void {
    this.control = control;
  }
  protected ctl(): TrainingControl {
    if (!this.control) throw new Error(`${this.name}: callback used before setControl()`);
    return this.control;
  }
}

export interface BestCheckpointOptions {
  /** Smallest gain of validation accuracy that counts as better. Default 0. */
  minDelta?: number;
  /** Called with a copy of the weights each time the validation accuracy improves (e.g. to write them). Default: none. */
  onBest?: (weights: Float32Array, epoch: number, valAccuracy: number) => Promise<void> | void;
}

/**
 * Tracks the epoch with the best validation accuracy (Keras ModelCheckpoint, save_best_only, monitor val_accuracy)
 * and hands its weights to `onBest`. It keeps no copy of them: EarlyStopping holds the weights it restores.
 */
export class BestCheckpoint extends ControlledCallback {
  readonly name = 'bestCheckpoint';
  best = -Infinity;
  bestEpoch = -1;
  constructor(private readonly options: BestCheckpointOptions = {}) {
    super();
  }
  onTrainBegin(): void {
    this.best = -Infinity;
    this.bestEpoch = -1;
  }
  async onEpochEnd(epoch: number, logs: EpochLogs): Promise<void> {
    if (logs.valAccuracy > this.best + (this.options.minDelta ?? 0)) {
      this.best = logs.valAccuracy;
      this.bestEpoch = epoch;
      await this.options.onBest?.(this.ctl().getWeights().slice(), epoch, logs.valAccuracy);
    }
  }
  exportState(): unknown {
    return { best: Number.isFinite(this.best) ? this.best : null, bestEpoch: this.bestEpoch };
  }
  /** Also reads the state of checkpoints written before the weights copy went (their `bestWeights` is ignored). */
  importState(state: unknown): void {
    const s = state as { best: number | null; bestEpoch: number };
    this.best = s.best ?? -Infinity;
    this.bestEpoch = s.bestEpoch;
  }
}

export interface EarlyStoppingOptions {
  /** Epochs without improvement of validation accuracy before stopping. Default 3. */
  patience?: number;
  /** Smallest gain that counts as an improvement. Default 0. */
  minDelta?: number;
  /** Put back the best epoch's weights when the phase ends (stopped early or not). Default true. */
  restoreBestWeights?: boolean;
}

/**
 * Keras EarlyStopping on validation accuracy (mode max). With restoreBestWeights the phase always ends on
 * the best epoch's weights (a deliberate choice: Keras restores only when it stops early).
 */
export class EarlyStopping extends ControlledCallback {
  readonly name = 'earlyStopping';
  readonly patience: number;
  readonly minDelta: number;
  readonly restoreBestWeights: boolean;
  best = -Infinity;
  wait = 0;
  stoppedEpoch = -1;
  bestWeights: Float32Array | undefined;
  constructor(options: EarlyStoppingOptions = {}) {
    super();
    this.patience = options.patience ?? 3;
    this.minDelta = options.minDelta ?? 0;
    this.restoreBestWeights = options.restoreBestWeights ?? true;
  }
  onTrainBegin(): void {
    // a fresh phase (state imported from a checkpoint is applied after this by the recipe)
    this.best = -Infinity;
    this.wait = 0;
    this.stoppedEpoch = -1;
    this.bestWeights = undefined;
  }
  onEpochEnd(epoch: number, logs: EpochLogs): void {
    const ctl = this.ctl();
    if (logs.valAccuracy > this.best + this.minDelta) {
      this.best = logs.valAccuracy;
      this.wait = 0;
      if (this.restoreBestWeights) this.bestWeights = ctl.getWeights().slice();
    } else {
      this.wait += 1;
      if (this.wait >= this.patience) {
        this.stoppedEpoch = epoch;
        ctl.stopTraining = true;
      }
    }
    ctl.emit({ type: 'early_stopping', time: ctl.now(), wait: this.wait, patience: this.patience, stopped: ctl.stopTraining && this.stoppedEpoch === epoch });
  }
  async onTrainEnd(): Promise<void> {
    if (this.restoreBestWeights && this.bestWeights) await this.ctl().setWeights(this.bestWeights.slice());
  }
  exportState(): unknown {
    return { best: Number.isFinite(this.best) ? this.best : null, wait: this.wait, stoppedEpoch: this.stoppedEpoch, bestWeights: this.bestWeights };
  }
  importState(state: unknown): void {
    const s = state as { best: number | null; wait: number; stoppedEpoch: number; bestWeights?: Float32Array };
    this.best = s.best ?? -Infinity;
    this.wait = s.wait;
    this.stoppedEpoch = s.stoppedEpoch;
    this.bestWeights = s.bestWeights;
  }
}

export interface ReduceLrOnPlateauOptions {
  /** Multiply the learning rate by this when the validation loss plateaus. Default 0.5. */
  factor?: number;
  /** Epochs without improvement before reducing. Default 2. */
  patience?: number;
  /** Smallest decrease of validation loss that counts (Keras default). Default 1e-4. */
  minDelta?: number;
  /** Epochs to wait after a reduction before counting again. Default 0. */
  cooldown?: number;
  /** Lower bound of the learning rate. Default 0. */
  minLr?: number;
}

/** Keras ReduceLROnPlateau monitoring validation loss (mode min). */
export class ReduceLrOnPlateau extends ControlledCallback {
  readonly name = 'reduceLrOnPlateau';
  readonly factor: number;
  readonly patience: number;
  readonly minDelta: number;
  readonly cooldown: number;
  readonly minLr: number;
  best = Infinity;
  wait = 0;
  cooldownCounter = 0;
  constructor(options: ReduceLrOnPlateauOptions = {}) {
    super();
    this.factor = options.factor ?? 0.5;
    this.patience = options.patience ?? 2;
    this.minDelta = options.minDelta ?? 1e-4;
    this.cooldown = options.cooldown ?? 0;
    this.minLr = options.minLr ?? 0;
  }
  onTrainBegin(): void {
    this.best = Infinity;
    this.wait = 0;
    this.cooldownCounter = 0;
  }
  onEpochEnd(_epoch: number, logs: EpochLogs): void {
    const ctl = this.ctl();
    if (this.cooldownCounter > 0) {
      this.cooldownCounter -= 1;
      this.wait = 0;
    }
    if (logs.valLoss < this.best - this.minDelta) {
      this.best = logs.valLoss;
      this.wait = 0;
    } else if (this.cooldownCounter <= 0) {
      this.wait += 1;
      if (this.wait >= this.patience) {
        const old = ctl.getLearningRate();
        if (old > this.minLr) {
          const lr = Math.max(old * this.factor, this.minLr);
          ctl.setLearningRate(lr);
          ctl.emit({
            type: 'lr_changed',
            time: ctl.now(),
            learningRate: lr,
            reason: `val loss has not improved for ${this.wait} epochs (best ${this.best.toFixed(4)})`,
          });
          this.cooldownCounter = this.cooldown;
          this.wait = 0;
        }
      }
    }
  }
  exportState(): unknown {
    return { best: Number.isFinite(this.best) ? this.best : null, wait: this.wait, cooldownCounter: this.cooldownCounter };
  }
  importState(state: unknown): void {
    const s = state as { best: number | null; wait: number; cooldownCounter: number };
    this.best = s.best ?? Infinity;
    this.wait = s.wait;
    this.cooldownCounter = s.cooldownCounter;
  }
}
