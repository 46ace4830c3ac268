import path from 'node:path';
import type { PhaseName, RunEvent } from '../../events/types.js';
import { EventFileWriter, type EventFileWriterOptions } from './event-file.js';

/** Options of a {@link TensorBoardLogger}. */
export interface TensorBoardLoggerOptions extends EventFileWriterOptions {
  /**
   * Maps a phase's epoch to the run's epoch (the fine-tune epochs continue after the head epochs), so that the
   * epoch curves of both phases form one line. Default: the phase's own epoch number.
   */
  globalEpoch?: (phase: PhaseName, epoch: number) => number;
}

/**
 * Writes a run's scalars for TensorBoard, Keras-style: `DIR/train` and `DIR/validation` hold the same epoch tags
 * (`epoch_loss`, `epoch_accuracy`), so TensorBoard draws train and validation on one chart; `DIR/train` also has
 * `epoch_learning_rate` and the per-step `batch_loss`, `batch_learning_rate`, `batch_images_per_second` and
 * `batch_step_time_ms` (x axis: the global step). Feed it every {@link RunEvent} of the run (`bus.on(logger.onEvent)`).
 */
export class TensorBoardLogger {
  private readonly train: EventFileWriter;
  private readonly validation: EventFileWriter;
  private readonly globalEpoch: (phase: PhaseName, epoch: number) => number;
  /** Without a validation split the recipe reports the training figures as validation ones: not drawn twice. */
  private hasValidation = true;

  constructor(dir: string, options: TensorBoardLoggerOptions = {}) {
    this.train = new EventFileWriter(path.join(dir, 'train'), options);
    this.validation = new EventFileWriter(path.join(dir, 'validation'), options);
    this.globalEpoch = options.globalEpoch ?? ((_phase, epoch) => epoch);
  }

  readonly onEvent = (e: RunEvent): void => {
    if (e.type === 'run_started') {
      this.hasValidation = e.valSamples > 0;
    } else if (e.type === 'step_completed') {
      const scalars: Record<string, number> = { batch_loss: e.loss, batch_learning_rate: e.learningRate, batch_step_time_ms: e.stepMs };
      if (e.stepMs > 0) scalars.batch_images_per_second = (e.samples * 1000) / e.stepMs;
      this.train.addScalars(e.step, scalars);
    } else if (e.type === 'epoch_completed') {
      const epoch = this.globalEpoch(e.phase, e.epoch);
      this.train.addScalars(epoch, { epoch_loss: e.trainLoss, epoch_accuracy: e.trainAccuracy, epoch_learning_rate: e.learningRate });
      if (this.hasValidation) this.validation.addScalars(epoch, { epoch_loss: e.valLoss, epoch_accuracy: e.valAccuracy });
    } else if (e.type === 'run_completed') {
      this.close();
    }
  };

  /** The event files, for the record. */
  get files(): { train: string; validation: string } {
    return { train: this.train.file, validation: this.validation.file };
  }

  close(): void {
    this.train.close();
    this.validation.close();
  }
}
