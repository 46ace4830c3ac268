import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { RunConfig } from '../config.js';
import type { Dataset, Sample } from '../data/types.js';
import { DptrainError } from '../errors.js';
import { EventBus } from '../events/bus.js';
import type { PhaseName, RunEvent, WorkerInfo } from '../events/types.js';
import { systemClock, type Clock } from '../util/clock.js';
import { TensorBoardLogger } from './tensorboard/tensorboard-logger.js';
import { runConfigToYaml } from '../config-resolve.js';
import { resolveClassWeights } from './class-weights.js';
import { addErrorContext, type ErrorContext } from '../util/error-context.js';
import { BestCheckpoint, CallbackList, EarlyStopping, ReduceLrOnPlateau, type EpochLogs, type TrainingCallback, type TrainingControl } from './callbacks.js';
import { readCheckpoint, writeCheckpoint, type EpochProgress, type EpochRecord, type TrainingCheckpoint } from './checkpoint.js';
import { argmaxRows, computeMetrics, type EvaluationMetrics } from './metrics.js';
import { useNativeOptimizer } from '../backend/loaders.js';
import { createOptimizer } from './optimizers.js';
import { LearningRateScheduler, phaseBaseLearningRate, phaseSchedule } from './lr-schedule.js';
import { runTrainingStep } from './training-step.js';
import { saveRun } from './run-model.js';
import { epochPermutation, globalBatch, stepsPerEpoch } from './sharding.js';
import type { TrainingExecutor, TrainStepResult, WeightSpec } from './types.js';
import { writeFileAtomic } from './atomic-write.js';
import { writeSubmission } from './submission.js';
import { resumeMismatches, runFingerprint, type ResumePosition, type RunFingerprint } from './run-fingerprint.js';

/** Refuses to resume a run whose settings changed (E_CHECKPOINT listing each difference). */
function assertSameRun(runDir: string, stored: RunFingerprint, current: RunFingerprint, at: ResumePosition): void {
  const diff = resumeMismatches(stored, current, at);
  if (diff.length === 0) return;
  throw new DptrainError(
    'E_CHECKPOINT',
    `${runDir}: cannot resume: ${diff.length} setting${diff.length === 1 ? '' : 's'} differ${diff.length === 1 ? 's' : ''} from the checkpoint's run ` +
      `(only the epoch counts, the checkpoint frequency, the data directory and logging may change; start a new run directory to train with other settings):\n` +
      diff.map((d) => `  ${d}`).join('\n'),
    { differences: diff },
  );
}

/** An executor that can also write the full trained model (tfjs layers format) itself. */
export interface ModelExportingExecutor extends TrainingExecutor {
  /** Writes the model with the current weights into `dir`; false when it cannot. */
  exportModel(dir: string): Promise<boolean>;
}

function canExport(e: TrainingExecutor): e is ModelExportingExecutor {
  return typeof (e as Partial<ModelExportingExecutor>).exportModel === 'function';
}

/** The data a run trains on, after validation and the stratified split. */
export interface TrainData {
  dataset: Dataset;
  train: Sample[];
  val: Sample[];
  test: Sample[];
  /** Culprits dropped by --skip-bad (reported in report.json). */
  dropped?: { file: string; line?: number; reason: string; message: string }[];
}

/** Builds the executor once the data is known (in process: a replica; cluster: the coordinator). */
export type ExecutorFactory = (args: { config: RunConfig; data: TrainData; bus: EventBus; clock: Clock }) => Promise<TrainingExecutor>;

export interface TrainOptions {
  config: RunConfig;
  /** Run directory: model, metrics.jsonl, report.json, submission.csv, checkpoint.bin. Created if missing. */
  runDir: string;
  /** The executor, or a factory called after data preparation. */
  executor: TrainingExecutor | ExecutorFactory;
  /** Prepared data. Default: `prepareData` of the config's data directory (validation + split). */
  data?: TrainData;
  /** Prepares the data when `data` is not given. Default: none (then `data` is required). */
  prepareData?: (config: RunConfig, bus: EventBus, clock: Clock) => Promise<TrainData>;
  /** Event stream. Default: a new bus. */
  bus?: EventBus;
  /** Time source for events and timings. Default: systemClock. */
  clock?: Clock;
  /** Backend and device in use, for events and the report. Default: 'unknown'. */
  backend?: { name: string; device: string };
  /** Number of workers behind the executor (for run_started). Default 1. */
  workers?: number;
  /** Continue from `<runDir>/checkpoint.bin` if present. Default false. */
  resume?: boolean;
  /** Stop (as if killed) once this many global steps are done, after any checkpoint due at that step. Default: never. */
  haltAfterSteps?: number;
  /**
   * Stops the run once aborted (Ctrl-C, SIGTERM): the step in flight completes, a checkpoint of that position is
   * written, and the result has `stopped` set (continue with `resume`). Default: never stops.
   */
  stopSignal?: AbortSignal;
  /** Writes a full tfjs layers model into the model directory (see saveRun). Default: the executor's `exportModel`, if it has one. */
  exportLayers?: (modelDir: string, metadata: Record<string, unknown>, weights: Float32Array) => Promise<boolean | void>;
  /** Run id for events. Default: the run directory's base name. */
  runId?: string;
  /** Workers that joined before the run started (cluster runs); later joins are read from the bus. Default: none. */
  workersJoinedBefore?: WorkerInfo[];
  /** Extra callbacks per phase (after the built-in ones). Default: none. */
  extraCallbacks?: (phase: PhaseName) => TrainingCallback[];
  /** Write TensorBoard scalars (loss, accuracy, learning rate, img/s, step time) to `<runDir>/tensorboard/`. Default true. */
  tensorboard?: boolean;
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

export interface TrainResult {
  /** True when `haltAfterSteps` or `stopSignal` stopped the run before its end. */
  halted: boolean;
  /** True when `stopSignal` stopped the run (after writing a checkpoint). */
  stopped?: boolean;
  steps: number;
  report?: RunReport;
  submissionPath?: string;
}

const PHASES: PhaseName[] = ['head', 'fine_tune'];

/** Epoch number fed to the sharding/augmentation seed: phases use disjoint ranges. */
export function globalEpoch(config: RunConfig, phase: PhaseName, epoch: number): number {
  return phase === 'head' ? epoch : config.headPhase.epochs + epoch;
}

function phaseSpec(config: RunConfig, phase: PhaseName): { epochs: number; learningRate: number } {
  return phase === 'head' ? config.headPhase : config.fineTunePhase;
}

/**
 * The whole recipe: data → phase 1 (head on a frozen base) → phase 2 (fine-tune, fresh Adam at the lower
 * learning rate) → final validation evaluation → test prediction → model, metrics.jsonl, report.json,
 * submission.csv. Checkpoints every `config.checkpointEvery` steps and at each phase end; `resume`
 * continues from the checkpoint exactly (same batches, same optimizer state, same callback state).
 */
export async function runTraining(options: TrainOptions): Promise<TrainResult> {
  let config = options.config;
  const clock = options.clock ?? systemClock;
  const bus = options.bus ?? new EventBus();
  const emit = (e: RunEvent): void => bus.emit(e);
  // every worker that took part, with the backend and device it really ran on (for report.json)
  const workersSeen = new Map<string, WorkerInfo>((options.workersJoinedBefore ?? []).map((w) => [w.id, w]));
  const stopWatchingWorkers = bus.on((e) => {
    if (e.type === 'worker_joined') workersSeen.set(e.worker.id, e.worker);
  });
  // The optimizer runs here (the coordinator, or the single process): compiled Adam when the native addon is present.
  await useNativeOptimizer();
  const runDir = path.resolve(options.runDir);
  const runId = options.runId ?? path.basename(runDir);
  await fs.mkdir(runDir, { recursive: true });
  const tensorboard =
    options.tensorboard === false
      ? undefined
      : new TensorBoardLogger(path.join(runDir, 'tensorboard'), { now: () => clock.now(), globalEpoch: (p, e) => globalEpoch(config, p, e) });
  const stopTensorboard = tensorboard ? bus.on(tensorboard.onEvent) : () => {};
  const t0 = clock.now();
  const timings: Record<string, number> = {};

  let data = options.data;
  if (!data) {
    if (!options.prepareData) throw new DptrainError('E_CONFIG', 'runTraining: neither data nor prepareData given');
    const t = clock.now();
    data = await options.prepareData(config, bus, clock);
    timings.data = clock.now() - t;
  }
  const classNames = data.dataset.classNames;
  config = resolveClassWeights(config, data.train, classNames.length);
  // every setting of the run, defaults resolved: `dptrain train --config RUN/config.yaml` runs it again
  await writeFileAtomic(path.join(runDir, 'config.yaml'), runConfigToYaml(config));
  if (data.train.length === 0) throw new DptrainError('E_DATA_INVALID', `no training samples in ${data.dataset.root}`);

  const ckptWarnings: string[] = [];
  const ckpt = options.resume ? await readCheckpoint(runDir, { onWarning: (m) => ckptWarnings.push(m) }) : undefined;
  if (ckpt && ckpt.datasetHash !== data.dataset.hash) {
    throw new DptrainError('E_CHECKPOINT', `${runDir}: checkpoint was written for another data set (hash ${ckpt.datasetHash}, now ${data.dataset.hash})`);
  }
  const fingerprint = runFingerprint(config);
  if (ckpt?.fingerprint) assertSameRun(runDir, ckpt.fingerprint, fingerprint, ckpt);
  if (ckpt) Object.assign(timings, ckpt.timings);

  const executor = typeof options.executor === 'function' ? await options.executor({ config, data, bus, clock }) : options.executor;
  const backend = options.backend ?? { name: 'unknown', device: 'unknown' };
  emit({
    type: 'run_started',
    time: clock.now(),
    runId,
    runDir,
    backend: backend.name,
    device: backend.device,
    workers: options.workers ?? 1,
    trainSamples: data.train.length,
    valSamples: data.val.length,
    testSamples: data.test.length,
    classes: classNames,
    precision: config.precision,
  });
  for (const message of ckptWarnings) emit({ type: 'log', time: clock.now(), level: 'warn', message });
  if (ckpt)
    emit({
      type: 'log',
      time: clock.now(),
      level: 'info',
      message: `resuming from step ${ckpt.step} (${ckpt.phase}, epoch ${ckpt.epoch + 1}, step ${ckpt.stepInEpoch} of the epoch)`,
    });

  const history: EpochRecord[] = ckpt ? [...ckpt.history] : [];
  const metricsFile = path.join(runDir, 'metrics.jsonl');
  await writeFileAtomic(metricsFile, history.map((h) => JSON.stringify(h) + '\n').join(''));

  const labelsOf = (s: Sample[]): number[] => s.map((x) => x.label);
  const evaluate = async (samples: Sample[]): Promise<EvaluationMetrics | null> => {
    if (samples.length === 0) return null;
    const probs = await executor.predict(samples, 'evaluate');
    return computeMetrics(probs, labelsOf(samples), classNames);
  };

  let step = ckpt?.step ?? 0;
  let lastPhase: PhaseName = 'head';
  let lastSpec: WeightSpec[] = [];
  let lastWeights: Float32Array = new Float32Array(0);
  const ckptPhaseIdx = ckpt ? PHASES.indexOf(ckpt.phase) : -1;
  // where the run is, added to an error that escapes (the CLI reports an unexpected one with it)
  let where: ErrorContext = {};

  try {
    for (let p = 0; p < PHASES.length; p++) {
      const phase = PHASES[p] as PhaseName;
      const spec0 = phaseSpec(config, phase);
      if (ckpt && p < ckptPhaseIdx) continue;
      if (ckpt && p === ckptPhaseIdx && ckpt.phaseDone) {
        // load the finished phase's weights so the next phase starts from them
        const begun = await executor.beginPhase(phase, ckpt.weights);
        lastPhase = phase;
        lastSpec = begun.spec;
        lastWeights = begun.weights;
        continue;
      }
      if (spec0.epochs === 0) continue;
      const resumeHere = ckpt && p === ckptPhaseIdx ? ckpt : undefined;
      const tPhase = clock.now();
      where = { phase, task: 'starting the phase' };
      const begun = await executor.beginPhase(phase, resumeHere?.weights);
      let weights: Float32Array = begun.weights.slice();
      const spec = begun.spec;
      const optimizer = createOptimizer(config, phaseBaseLearningRate(config, phase));
      if (resumeHere) optimizer.importState(resumeHere.optimizer);

      const control: TrainingControl = {
        getWeights: () => weights,
        setWeights: async (w) => {
          weights = w.slice();
          await executor.setWeights(weights);
        },
        getLearningRate: () => optimizer.learningRate,
        setLearningRate: (lr) => {
          optimizer.learningRate = lr;
        },
        stopTraining: false,
        emit,
        now: () => clock.now(),
      };
      const n = data.train.length;
      const steps = stepsPerEpoch(n, config.batchSize);
      const schedule = phaseSchedule(config, phase, steps);
      const callbacks = new CallbackList([
        new LearningRateScheduler(schedule),
        new BestCheckpoint(),
        new EarlyStopping({ patience: config.patience, restoreBestWeights: true }),
        ...(schedule.kind === 'plateau'
          ? [new ReduceLrOnPlateau({ factor: config.reduceLrFactor, patience: config.reduceLrPatience, minLr: config.minLr })]
          : []),
        ...(options.extraCallbacks?.(phase) ?? []),
      ]);
      callbacks.setControl(control);
      await callbacks.onTrainBegin();
      if (resumeHere) {
        callbacks.importState(resumeHere.callbacks);
        control.stopTraining = resumeHere.stopTraining;
      }

      emit({
        type: 'phase_started',
        time: clock.now(),
        phase,
        epochs: spec0.epochs,
        stepsPerEpoch: steps,
        learningRate: optimizer.learningRate,
        trainableParams: weights.length,
      });

      let epoch = resumeHere?.epoch ?? 0;
      let startStep = resumeHere?.stepInEpoch ?? 0;
      let progress: EpochProgress = resumeHere?.progress ?? { lossSum: 0, correct: 0, count: 0, elapsedMs: 0 };

      const checkpoint = async (pos: { epoch: number; stepInEpoch: number; phaseDone: boolean; progress: EpochProgress }): Promise<void> => {
        await executor.syncOptimizerState?.(optimizer);
        const file = await writeCheckpoint(runDir, {
          version: 2,
          phase,
          phaseDone: pos.phaseDone,
          epoch: pos.epoch,
          stepInEpoch: pos.stepInEpoch,
          step,
          spec,
          weights,
          optimizer: optimizer.exportState(),
          callbacks: callbacks.exportState(),
          stopTraining: control.stopTraining,
          rng: { seed: config.seed, epoch: globalEpoch(config, phase, pos.epoch) },
          progress: pos.progress,
          history,
          timings: { ...timings, [phase]: (timings[phase] ?? 0) + (clock.now() - tPhase) },
          datasetHash: data.dataset.hash,
          fingerprint,
        } satisfies TrainingCheckpoint);
        emit({ type: 'checkpoint_written', time: clock.now(), path: file, step });
      };

      for (; epoch < spec0.epochs && !control.stopTraining; epoch++) {
        const gEpoch = globalEpoch(config, phase, epoch);
        const tEpoch = clock.now() - progress.elapsedMs;
        if (startStep === 0) {
          await callbacks.onEpochBegin(epoch);
          emit({ type: 'epoch_started', time: clock.now(), phase, epoch });
        }
        const order = epochPermutation(n, config.seed, gEpoch);
        for (let s = startStep; s < steps; s++) {
          const tStep = clock.now();
          where = { phase, epoch: epoch + 1, step: step + 1 };
          await callbacks.onBatchBegin(s, { epoch });
          const batch = globalBatch(n, config.batchSize, config.seed, gEpoch, s, order).map((i) => data.train[i] as Sample);
          let res: TrainStepResult;
          try {
            res = await runTrainingStep(executor, batch, { phase, epoch: gEpoch, step }, { weights, optimizer, clipNorm: config.clipNorm });
          } catch (err) {
            // stopped while the step could not run (a cluster waiting for workers): keep the steps done so far
            if (!options.stopSignal?.aborted) throw err;
            await checkpoint({ epoch, stepInEpoch: s, phaseDone: false, progress: { ...progress, elapsedMs: clock.now() - tEpoch } });
            return { halted: true, stopped: true, steps: step };
          }
          step++;
          progress = {
            lossSum: progress.lossSum + res.loss * res.count,
            correct: progress.correct + res.correct,
            count: progress.count + res.count,
            elapsedMs: 0,
            learningRates: [...(progress.learningRates ?? []), optimizer.learningRate],
          };
          emit({
            type: 'step_completed',
            time: clock.now(),
            phase,
            epoch,
            step,
            stepInEpoch: s + 1,
            stepsPerEpoch: steps,
            loss: res.loss,
            samples: res.count,
            stepMs: clock.now() - tStep,
            learningRate: optimizer.learningRate,
            workers: res.workers,
            ...(res.straggler ? { straggler: res.straggler } : {}),
          });
          await callbacks.onBatchEnd(s, { loss: res.loss, samples: res.count, step });
          if (config.checkpointEvery > 0 && step % config.checkpointEvery === 0) {
            await checkpoint({ epoch, stepInEpoch: s + 1, phaseDone: false, progress: { ...progress, elapsedMs: clock.now() - tEpoch } });
          }
          if (options.haltAfterSteps !== undefined && step >= options.haltAfterSteps) {
            return { halted: true, steps: step };
          }
          if (options.stopSignal?.aborted) {
            if (!(config.checkpointEvery > 0 && step % config.checkpointEvery === 0)) {
              await checkpoint({ epoch, stepInEpoch: s + 1, phaseDone: false, progress: { ...progress, elapsedMs: clock.now() - tEpoch } });
            }
            return { halted: true, stopped: true, steps: step };
          }
        }
        startStep = 0;
        where = { phase, epoch: epoch + 1, task: 'validation' };
        const val = await evaluate(data.val);
        const trainLoss = progress.count > 0 ? progress.lossSum / progress.count : 0;
        const trainAccuracy = progress.count > 0 ? progress.correct / progress.count : 0;
        const logs: EpochLogs = {
          trainLoss,
          trainAccuracy,
          // without a validation split, monitor the training figures
          valLoss: val ? val.loss : trainLoss,
          valAccuracy: val ? val.accuracy : trainAccuracy,
          learningRate: optimizer.learningRate,
        };
        const epochMs = clock.now() - tEpoch;
        const record: EpochRecord = { phase, epoch, step, ...logs, stepLearningRates: progress.learningRates ?? [], epochMs };
        history.push(record);
        await fs.appendFile(metricsFile, JSON.stringify(record) + '\n');
        emit({ type: 'epoch_completed', time: clock.now(), phase, epoch, ...logs, epochMs });
        await callbacks.onEpochEnd(epoch, logs);
        progress = { lossSum: 0, correct: 0, count: 0, elapsedMs: 0 };
      }
      await callbacks.onTrainEnd();
      timings[phase] = (timings[phase] ?? 0) + (clock.now() - tPhase);
      await checkpoint({ epoch, stepInEpoch: 0, phaseDone: true, progress });
      lastPhase = phase;
      lastSpec = spec;
      lastWeights = weights;
      if (options.stopSignal?.aborted) return { halted: true, stopped: true, steps: step };
    }

    if (lastSpec.length === 0) {
      // no phase ran (all epochs 0): use the initial head
      const begun = await executor.beginPhase('head');
      lastSpec = begun.spec;
      lastWeights = begun.weights;
      lastPhase = 'head';
    }

    // every phase is done and checkpointed: a stop now loses nothing (resume evaluates and predicts)
    if (options.stopSignal?.aborted) return { halted: true, stopped: true, steps: step };
    let t = clock.now();
    where = { task: 'final validation' };
    const validation = await evaluate(data.val);
    timings.evaluate = clock.now() - t;

    let submissionPath: string | undefined;
    if (data.test.length > 0) {
      t = clock.now();
      where = { task: 'test prediction' };
      const probs = await executor.predict(data.test, 'predict');
      submissionPath = path.join(runDir, 'submission.csv');
      await writeSubmission(submissionPath, data.test, argmaxRows(probs, classNames.length), classNames, data.dataset.layout);
      timings.predict = clock.now() - t;
    }

    t = clock.now();
    where = { task: 'saving the model' };
    const finalWeights = lastWeights;
    const exportLayers = options.exportLayers
      ? (dir: string, meta: Record<string, unknown>) => options.exportLayers!(dir, meta, finalWeights)
      : canExport(executor)
        ? (dir: string) => executor.exportModel(dir)
        : undefined;
    await saveRun({ runDir, config, classNames, phase: lastPhase, spec: lastSpec, weights: finalWeights, ...(exportLayers ? { exportLayers } : {}) });
    timings.save = clock.now() - t;
    const wallMs = clock.now() - t0;
    timings.total = wallMs;

    const report: RunReport = {
      runId,
      runDir,
      backend: backend.name,
      device: backend.device,
      precision: config.precision,
      workers: options.workers ?? 1,
      workerDetails: [...workersSeen.values()],
      classNames,
      samples: { train: data.train.length, validation: data.val.length, test: data.test.length, dropped: data.dropped?.length ?? 0 },
      steps: step,
      validation,
      history,
      timingsMs: timings,
      submission: submissionPath ?? null,
      config,
      dropped: data.dropped ?? [],
    };
    await writeFileAtomic(path.join(runDir, 'report.json'), JSON.stringify(report, null, 2));
    emit({
      type: 'run_completed',
      time: clock.now(),
      valAccuracy: validation?.accuracy ?? NaN,
      valLoss: validation?.loss ?? NaN,
      steps: step,
      wallMs,
      ...(submissionPath ? { submissionPath } : {}),
    });
    return { halted: false, steps: step, report, ...(submissionPath ? { submissionPath } : {}) };
  } catch (err) {
    throw addErrorContext(err, where);
  } finally {
    stopWatchingWorkers();
    stopTensorboard();
    tensorboard?.close();
    if (typeof options.executor === 'function') await executor.close();
  }
}
