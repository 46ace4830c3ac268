import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import {
  EventBus,
  generateSyntheticScenes,
  SYNTHETIC_CLASS_NAMES,
  parseRunConfig,
  scoreSubmission,
  type BackendInfo,
  type RunConfig,
  type TrainResult,
  startBackend,
} from '@dptrain/core';
import { runSingleNode, type WorkerOutputMode } from '@dptrain/coordinator';
import { attachRunViews } from '../run-views.js';
import { countFlag } from '../flag-count.js';
import { defaultRunDir, printSummary } from './train.js';

export interface DemoCommandValues {
  out?: string;
  seed: string;
  perClass: string;
  size: string;
  epochs: string;
  fineTuneEpochs: string;
  backend?: string;
  workers: string;
  plain: boolean;
  quiet: boolean;
}

/** How the demo trains once its data exists: in process by default; the cluster's single-node mode can take over. */
export type DemoTrainer = (args: {
  config: RunConfig;
  runDir: string;
  bus: EventBus;
  backend: BackendInfo;
  workerOutput?: WorkerOutputMode;
}) => Promise<TrainResult>;

/**
 * The demo's run configuration: a small VGG-shaped net (tiny-vgg, random init: there are no pretrained weights
 * for it) on 64x64 synthetic scenes, flatten head. Because the base is random, both phases use larger rates
 * than the pretrained recipe's 1e-3 / 1e-5.
 */
export function demoConfig(dataDir: string, values: Partial<DemoCommandValues> = {}): RunConfig {
  const size = Number(values.size ?? 64);
  return parseRunConfig({
    dataDir,
    backbone: { kind: 'tiny-vgg', inputSize: [size, size], tinyWidths: [8, 16, 32, 32, 32] },
    preprocess: 'tf',
    classNames: [...SYNTHETIC_CLASS_NAMES],
    // flatten keeps where things are (sky on top, ground below), which a random base's pooled features lose
    head: { units: 64, dropout: 0.3, pooling: 'flatten' },
    headPhase: { epochs: Number(values.epochs ?? 20), learningRate: 1e-2 },
    fineTunePhase: { epochs: Number(values.fineTuneEpochs ?? 10), learningRate: 1e-3, unfreeze: 'block5' },
    batchSize: 32,
    seed: Number(values.seed ?? 42),
    patience: 4,
    checkpointEvery: 20,
  });
}

/** Single-node mode: a coordinator and `workers` local worker processes over loopback WebSockets (0: in process). */
export function singleNodeDemoTrainer(workers: number, backendName?: string): DemoTrainer {
  return ({ config, runDir, bus, workerOutput }) =>
    runSingleNode({
      config,
      runDir,
      bus,
      workers,
      ...(backendName ? { backend: backendName } : {}),
      ...(workerOutput ? { workerOutput } : {}),
      say: (l) => bus.emit({ type: 'log', time: Date.now(), level: 'info', message: l }),
    });
}

export async function demoCommand(values: DemoCommandValues, trainer?: DemoTrainer): Promise<TrainResult> {
  const workers = countFlag(values.workers ?? '2', '--workers');
  trainer ??= singleNodeDemoTrainer(workers, values.backend);
  const write = (l: string): void => void process.stdout.write(l + '\n');
  const runDir = path.resolve(values.out ?? defaultRunDir('demo'));
  const dataDir = path.join(runDir, 'data');
  const backend = await startBackend(values.backend);
  write(`dptrain demo: backend ${backend.name} (${backend.device})`);
  if (!existsSync(path.join(dataDir, 'train.csv'))) {
    write(`generating synthetic scenes in ${dataDir} ...`);
    const gen = await generateSyntheticScenes(dataDir, {
      seed: Number(values.seed),
      perClass: Number(values.perClass),
      testPerClass: 15,
      size: Math.max(64, Number(values.size)),
    });
    write(`  ${gen.train} labelled + ${gen.test} test images, classes ${gen.classNames.join(', ')}`);
  }
  const config = demoConfig(dataDir, values);
  const bus = new EventBus();
  // the dashboard on a terminal (plain lines otherwise, or with --plain); JSON log and charts in the run dir
  const views = values.quiet
    ? undefined
    : await attachRunViews(bus, { command: 'demo', runDir, plain: values.plain, logEvery: 20, minWorkers: Math.max(1, workers) });
  let result: TrainResult;
  try {
    // the dashboard owns the terminal: workers' lines go to the run log, their warnings to the events pane
    result = await trainer({ config, runDir, bus, backend, workerOutput: views?.mode === 'plain' ? 'inherit' : 'events' });
  } catch (err) {
    await views?.close();
    throw err;
  }
  await views?.finish(); // charts + the terminal summary
  if (!views) printSummary(result, write);
  if (result.submissionPath && existsSync(path.join(dataDir, 'test_labels.csv'))) {
    const s = scoreSubmission(result.submissionPath, path.join(dataDir, 'test_labels.csv'));
    write(`test:        accuracy ${(100 * s.accuracy).toFixed(1)}% (${s.correct}/${s.scored}) on the held-out synthetic test images`);
  }
  return result;
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('built-in demo: generate synthetic scenes (competition layout) and train a small VGG-shaped model on them')
    .option('--out <dir>', 'run directory; the data goes to <out>/data (default: runs/demo-<timestamp>)')
    .option('--seed <n>', 'seed of the scenes and the training', '42')
    .option('--per-class <n>', 'labelled images per class', '60')
    .option('--size <px>', 'model input size (images are rendered at this size, min 64)', '64')
    .option('--epochs <n>', 'head epochs', '20')
    .option('--fine-tune-epochs <n>', 'fine-tune epochs', '10')
    .option('--backend <name>', 'compute backend (default: first that loads)')
    .option('--workers <n>', 'local worker processes in single-node mode (0: in this process)', '2')
    .option('--plain', 'log lines instead of the terminal dashboard', false)
    .option('-q, --quiet', 'no progress lines', false)
    .action(async (opts: DemoCommandValues) => {
      await demoCommand(opts);
    });
}
