import { Option, type Command } from 'commander';
import * as path from 'node:path';
import {
  EventBus,
  localExecutorFactory,
  prepareTrainData,
  runTraining,
  systemClock,
  type ExecutorFactory,
  type TrainResult,
  withRunPrecision,
  startBackend,
} from '@dptrain/core';
import { addTrainingFlags, printConfigIfAsked, toRunConfig, type TrainingFlagValues } from '../training-flags.js';
import { countFlag } from '../flag-count.js';
import { BACKEND_CHOICES } from '../backend-flag.js';
import { reportStop, stopOnSignals } from '../stop-signals.js';
import { addViewFlags, attachRunViews, type RunViews, type ViewFlagValues } from '../run-views.js';

export interface TrainCommandValues extends TrainingFlagValues, ViewFlagValues {
  backend?: string;
  computeBackend?: string;
  out?: string;
  resume: boolean;
  quiet: boolean;
}

/** Default run directory: runs/<UTC timestamp> under the current directory. */
export function defaultRunDir(prefix = 'run'): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  return path.resolve('runs', `${prefix}-${stamp}`);
}

/** Prints the end-of-run summary lines. */
export function printSummary(result: TrainResult, write: (l: string) => void = (l) => void process.stdout.write(l + '\n')): void {
  const r = result.report;
  if (!r) return;
  const v = r.validation;
  write('');
  write(`backend:     ${r.backend} (${r.device}), precision ${r.precision}`);
  write(
    `samples:     ${r.samples.train} train, ${r.samples.validation} validation, ${r.samples.test} test${r.samples.dropped ? `, ${r.samples.dropped} dropped` : ''}`,
  );
  if (v) {
    write(`validation:  accuracy ${(100 * v.accuracy).toFixed(2)}%, loss ${v.loss.toFixed(4)}, macro F1 ${v.macro.f1.toFixed(3)}`);
    write(`per class:   ${v.perClass.map((c) => `${c.name} ${(100 * c.recall).toFixed(0)}%`).join(', ')} (recall)`);
  }
  write(`steps:       ${r.steps} in ${((r.timingsMs.total ?? 0) / 1000).toFixed(1)} s`);
  write(`run dir:     ${r.runDir} (model/, metrics.jsonl, report.json${r.submission ? ', submission.csv' : ''})`);
}

/** Runs the whole recipe in this process (or with the given executor factory). */
export async function trainCommand(values: TrainCommandValues, factory?: ExecutorFactory): Promise<TrainResult> {
  const flagConfig = toRunConfig(values);
  const backend = await startBackend(values.computeBackend ?? values.backend);
  const config = await withRunPrecision(flagConfig, backend.name);
  const write = (l: string): void => void process.stdout.write(l + '\n');
  write(`dptrain: backend ${backend.name} (${backend.device}), precision ${config.precision}`);
  const runDir = path.resolve(values.out ?? defaultRunDir());
  const bus = new EventBus();
  // the same views as `single` and `coordinator`: the dashboard on a terminal (lines otherwise, or with --plain),
  // run.log.jsonl, metrics, and the charts and summary at the end; -q: none of them, the summary lines only
  const views: RunViews | undefined = values.quiet
    ? undefined
    : await attachRunViews(bus, {
        command: 'train',
        runDir,
        plain: values.plain,
        logEvery: countFlag(values.logEvery, '--log-every', 1),
        charts: values.charts,
        ...(values.metricsPort !== undefined ? { metricsPort: Number(values.metricsPort) } : {}),
        ...(values.metricsHost !== undefined ? { metricsHost: values.metricsHost } : {}),
      });
  const say = (l: string): void => (views ? views.say(l) : void process.stderr.write(`dptrain: ${l}\n`));
  // Ctrl-C, SIGTERM, SIGHUP: finish the step, write a checkpoint, stop
  const stop = stopOnSignals({ say });
  let result: TrainResult;
  try {
    result = await runTraining({
      config,
      runDir,
      bus,
      clock: systemClock,
      backend: { name: backend.name, device: backend.device },
      prepareData: (c, b, clock) => prepareTrainData(c, b, clock),
      executor: factory ?? localExecutorFactory({ backend, replica: { cacheDir: path.join(runDir, 'cache') } }),
      resume: values.resume,
      stopSignal: stop.signal,
    });
  } catch (err) {
    await views?.close();
    throw err;
  } finally {
    stop.dispose();
  }
  if (result.stopped) {
    await views?.close();
    reportStop(stop, { steps: result.steps, resumeHint: `dptrain train --resume --out ${runDir} and the same flags`, say });
    return result;
  }
  if (views)
    await views.finish(); // charts + the summary, as `single` prints them
  else printSummary(result, write);
  return result;
}

export function register(program: Command): void {
  const cmd = program
    .command('train')
    .description('train in this process: validate the data, train the head, fine-tune, evaluate, write model + report + submission.csv');
  addViewFlags(addTrainingFlags(cmd))
    .addOption(new Option('--backend <name>', 'compute backend (default: first that loads)').choices(BACKEND_CHOICES))
    .option('--out <dir>', 'run directory (default: runs/run-<timestamp>)')
    .option('--resume', 'continue from <out>/checkpoint.bin', false)
    .option('-q, --quiet', 'no dashboard, progress lines, run log or charts: the summary only', false)
    .action(async (opts: TrainCommandValues) => {
      if (printConfigIfAsked(opts, toRunConfig(opts))) return;
      await trainCommand(opts);
    });
}
