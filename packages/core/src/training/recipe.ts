import * as path from 'node:path';
import type { RunConfig } from '../config.js';
import type { Sample } from '../data/types.js';
import { DptrainError } from '../errors.js';
import { EventBus } from '../events/bus.js';
import type { PhaseName, RunEvent, WorkerInfo } from '../events/types.js';
import { systemClock, type Clock } from '../util/clock.js';
import { resolveClassWeights } from './class-weights.js';
import { addErrorContext, type ErrorContext } from '../util/error-context.js';
import type { TrainingCallback } from './callbacks.js';
import { readCheckpoint } from './checkpoint.js';
import { argmaxRows, computeMetrics, type EvaluationMetrics } from './metrics.js';
import { useNativeOptimizer } from './native-adam.js';
import type { TrainingExecutor, WeightSpec } from './types.js';
import { resumeMismatches, runFingerprint, type ResumePosition, type RunFingerprint } from './run-fingerprint.js';
import { type FitPhaseContext, globalEpoch, runPhase } from './fit-phase.js';
import { RunOutputs, type RunReport, type TrainData } from './run-outputs.js';

export { globalEpoch } from './fit-phase.js';
export type { RunReport, TrainData } from './run-outputs.js';

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
  const outputs = await RunOutputs.open({
    runDir,
    bus,
    clock,
    globalEpoch: (p, e) => globalEpoch(config, p, e),
    ...(options.tensorboard === false ? { tensorboard: false } : {}),
  });
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
  await outputs.writeConfig(config);
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

  await outputs.startHistory(ckpt?.history ?? []);
  const evaluate = async (samples: Sample[]): Promise<EvaluationMetrics | null> => {
    if (samples.length === 0) return null;
    const probs = await executor.predict(samples, 'evaluate');
    return computeMetrics(
      probs,
      samples.map((x) => x.label),
      classNames,
    );
  };

  let step = ckpt?.step ?? 0;
  let lastPhase: PhaseName = 'head';
  let lastSpec: WeightSpec[] = [];
  let lastWeights: Float32Array = new Float32Array(0);
  const ckptPhaseIdx = ckpt ? PHASES.indexOf(ckpt.phase) : -1;
  // where the run is, added to an error that escapes (the CLI reports an unexpected one with it)
  let where: ErrorContext = {};
  const fit = (phase: PhaseName): FitPhaseContext => ({
    config,
    data: data as TrainData,
    executor,
    outputs,
    clock,
    emit,
    timings,
    fingerprint,
    evaluate,
    setWhere: (w) => {
      where = w;
    },
    ...(options.haltAfterSteps !== undefined ? { haltAfterSteps: options.haltAfterSteps } : {}),
    ...(options.stopSignal ? { stopSignal: options.stopSignal } : {}),
    extraCallbacks: options.extraCallbacks?.(phase) ?? [],
  });

  try {
    for (let p = 0; p < PHASES.length; p++) {
      const phase = PHASES[p] as PhaseName;
      if (ckpt && p < ckptPhaseIdx) continue;
      if (ckpt && p === ckptPhaseIdx && ckpt.phaseDone) {
        // load the finished phase's weights so the next phase starts from them
        const begun = await executor.beginPhase(phase, ckpt.weights);
        lastPhase = phase;
        lastSpec = begun.spec;
        lastWeights = begun.weights;
        continue;
      }
      if ((phase === 'head' ? config.headPhase : config.fineTunePhase).epochs === 0) continue;
      const ran = await runPhase(fit(phase), phase, step, ckpt && p === ckptPhaseIdx ? ckpt : undefined);
      step = ran.step;
      if (ran.outcome === 'halted') return { halted: true, steps: step };
      if (ran.outcome === 'stopped') return { halted: true, stopped: true, steps: step };
      lastPhase = phase;
      lastSpec = ran.spec;
      lastWeights = ran.weights;
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
      submissionPath = await outputs.writeSubmission(data, argmaxRows(probs, classNames.length));
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
    await outputs.saveModel({ config, classNames, phase: lastPhase, spec: lastSpec, weights: finalWeights, ...(exportLayers ? { exportLayers } : {}) });
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
      history: outputs.history,
      timingsMs: timings,
      submission: submissionPath ?? null,
      config,
      dropped: data.dropped ?? [],
    };
    await outputs.writeReport(report);
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
    outputs.close();
    if (typeof options.executor === 'function') await executor.close();
  }
}
