import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { RunConfig } from '../config.js';
import { runConfigToYaml } from '../config-resolve.js';
import type { Dataset, Sample } from '../data/types.js';
import type { EventBus } from '../events/bus.js';
import type { PhaseName, WorkerInfo } from '../events/types.js';
import type { Clock } from '../util/clock.js';
import { writeFileAtomic } from './atomic-write.js';
import { type EpochRecord, type TrainingCheckpoint, writeCheckpoint } from './checkpoint.js';
import type { EvaluationMetrics } from './metrics.js';
import { type SaveRunOptions, saveRun } from './run-model.js';
import { writeSubmission } from './submission.js';
import { TensorBoardLogger } from './tensorboard/tensorboard-logger.js';

/** The data a run trains on, after validation and the stratified split. */
export interface TrainData {
  dataset: Dataset;
  train: Sample[];
  val: Sample[];
  test: Sample[];
  /** Culprits dropped by --skip-bad (reported in report.json). */
  dropped?: { file: string; line?: number; reason: string; message: string }[];
}

/** report.json */
export interface RunReport {
  runId: string;
  runDir: string;
  backend: string;
  device: string;
  /** Precision of the run's convolutions and matmuls ('fp32' or 'bf16'; resolved from 'auto' where the run started). */
  precision: string;
  workers: number;
  /** Each worker that joined the run: id, host, backend and device it really used (cluster runs). */
  workerDetails: WorkerInfo[];
  classNames: string[];
  samples: { train: number; validation: number; test: number; dropped: number };
  steps: number;
  validation: EvaluationMetrics | null;
  history: EpochRecord[];
  timingsMs: Record<string, number>;
  submission: string | null;
  config: RunConfig;
  dropped: TrainData['dropped'];
}

export interface RunOutputsOptions {
  /** Run directory (absolute); created if missing. */
  runDir: string;
  /** The event stream: checkpoint_written goes to it, and TensorBoard reads it. */
  bus: EventBus;
  /** Time source of the events. */
  clock: Clock;
  /** Write TensorBoard scalars to `<runDir>/tensorboard/`. Default true. */
  tensorboard?: boolean;
  /** Epoch number across phases, for TensorBoard's x axis. */
  globalEpoch: (phase: PhaseName, epoch: number) => number;
}

/**
 * Everything a run writes into its directory, in one place: config.yaml, the history (metrics.jsonl, kept in
 * memory for checkpoints and the report), checkpoint.bin, TensorBoard scalars, submission.csv, the model and
 * report.json. The fit loop decides when; this module decides where and how (atomically, see atomic-write.ts).
 */
export class RunOutputs {
  /** Completed epochs of the run, both phases, in order (metrics.jsonl content). */
  readonly history: EpochRecord[] = [];
  private readonly stopTensorboard: () => void;
  private readonly tensorboard: TensorBoardLogger | undefined;

  private constructor(private readonly options: RunOutputsOptions) {
    this.tensorboard =
      options.tensorboard === false
        ? undefined
        : new TensorBoardLogger(path.join(options.runDir, 'tensorboard'), { now: () => options.clock.now(), globalEpoch: options.globalEpoch });
    this.stopTensorboard = this.tensorboard ? options.bus.on(this.tensorboard.onEvent) : () => {};
  }

  /** Creates the run directory and starts the TensorBoard writer. */
  static async open(options: RunOutputsOptions): Promise<RunOutputs> {
    await fs.mkdir(options.runDir, { recursive: true });
    return new RunOutputs(options);
  }

  get runDir(): string {
    return this.options.runDir;
  }

  private file(name: string): string {
    return path.join(this.options.runDir, name);
  }

  /** config.yaml: every setting of the run, defaults resolved (`dptrain train --config RUN/config.yaml` runs it again). */
  writeConfig(config: RunConfig): Promise<void> {
    return writeFileAtomic(this.file('config.yaml'), runConfigToYaml(config));
  }

  /** Starts metrics.jsonl over with the epochs already done (those of a resumed checkpoint, or none). */
  async startHistory(done: readonly EpochRecord[]): Promise<void> {
    this.history.splice(0, this.history.length, ...done);
    await writeFileAtomic(this.file('metrics.jsonl'), this.history.map((h) => `${JSON.stringify(h)}\n`).join(''));
  }

  /** Appends one finished epoch to the history and to metrics.jsonl. */
  async recordEpoch(record: EpochRecord): Promise<void> {
    this.history.push(record);
    await fs.appendFile(this.file('metrics.jsonl'), `${JSON.stringify(record)}\n`);
  }

  /** Writes checkpoint.bin and emits checkpoint_written. */
  async checkpoint(ckpt: TrainingCheckpoint): Promise<void> {
    const file = await writeCheckpoint(this.options.runDir, ckpt);
    this.options.bus.emit({ type: 'checkpoint_written', time: this.options.clock.now(), path: file, step: ckpt.step });
  }

  /** Writes submission.csv in the data set's layout; returns its path. */
  async writeSubmission(data: TrainData, predictions: number[]): Promise<string> {
    const file = this.file('submission.csv');
    await writeSubmission(file, data.test, predictions, data.dataset.classNames, data.dataset.layout);
    return file;
  }

  /** Saves the trained model under `<runDir>/model/` (see saveRun). */
  async saveModel(model: Omit<SaveRunOptions, 'runDir'>): Promise<void> {
    await saveRun({ runDir: this.options.runDir, ...model });
  }

  /** Writes report.json. */
  writeReport(report: RunReport): Promise<void> {
    return writeFileAtomic(this.file('report.json'), JSON.stringify(report, null, 2));
  }

  /** Stops and closes the TensorBoard writer. */
  close(): void {
    this.stopTensorboard();
    this.tensorboard?.close();
  }
}
