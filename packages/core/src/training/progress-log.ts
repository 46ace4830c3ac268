import type { RunEvent, RunEventListener } from '../events/types.js';

export interface ProgressLoggerOptions {
  /** Where lines go. Default: process.stdout. */
  write?: (line: string) => void;
  /** Also print a line every N steps (0: never). Default 0. */
  everySteps?: number;
}

function pct(x: number): string {
  return Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : 'n/a';
}

/** A plain listener that turns run events into short progress lines (one per epoch, plus notable events). */
export function createProgressLogger(options: ProgressLoggerOptions = {}): RunEventListener {
  const write = options.write ?? ((l: string) => void process.stdout.write(l + '\n'));
  const every = options.everySteps ?? 0;
  let lastProgressBucket = '';
  return (e: RunEvent) => {
    switch (e.type) {
      case 'run_started':
        write(
          `run ${e.runId}: backend ${e.backend} (${e.device})${e.precision ? `, precision ${e.precision}` : ''}, ${e.workers} worker(s), ${e.trainSamples} train / ${e.valSamples} val / ${e.testSamples} test, classes ${e.classes.join(',')}`,
        );
        break;
      case 'phase_started':
        write(`phase ${e.phase}: ${e.epochs} epoch(s) x ${e.stepsPerEpoch} steps, lr ${e.learningRate}, ${e.trainableParams} trainable params`);
        break;
      case 'step_completed':
        if (every > 0 && e.step % every === 0)
          write(`  step ${e.step} (${e.stepInEpoch}/${e.stepsPerEpoch}) loss ${e.loss.toFixed(4)} ${e.stepMs.toFixed(0)} ms`);
        break;
      case 'epoch_completed':
        write(
          `${e.phase} epoch ${e.epoch + 1}: loss ${e.trainLoss.toFixed(4)} acc ${pct(e.trainAccuracy)} | val loss ${e.valLoss.toFixed(4)} acc ${pct(e.valAccuracy)} | lr ${e.learningRate.toExponential(1)} | ${(e.epochMs / 1000).toFixed(1)} s`,
        );
        break;
      case 'lr_changed':
        write(`learning rate -> ${e.learningRate.toExponential(2)} (${e.reason})`);
        break;
      case 'early_stopping':
        if (e.stopped) write(`early stopping: no improvement for ${e.wait} epoch(s)`);
        break;
      case 'progress': {
        const bucket = `${e.task}:${Math.floor((10 * e.done) / Math.max(1, e.total))}`;
        if ((e.done === e.total || bucket !== lastProgressBucket) && (e.task === 'validate' || e.task === 'extract_features' || e.task === 'predict')) {
          if (e.done === e.total || e.total >= 200) write(`  ${e.task}: ${e.done}/${e.total}`);
        }
        lastProgressBucket = bucket;
        break;
      }
      case 'worker_joined':
        write(`worker ${e.worker.id} joined (${e.worker.host}, ${e.worker.backend}, ${e.worker.device})`);
        break;
      case 'worker_lost':
        write(`worker ${e.id} lost: ${e.reason}`);
        break;
      case 'waiting_for_workers':
        write(`waiting for workers: ${e.connected}/${e.required}`);
        break;
      case 'run_completed':
        write(
          `done: ${e.steps} steps, val acc ${pct(e.valAccuracy)}, val loss ${e.valLoss.toFixed(4)}, ${(e.wallMs / 1000).toFixed(1)} s${e.submissionPath ? `, submission ${e.submissionPath}` : ''}`,
        );
        break;
      case 'log':
        if (e.level !== 'debug') write(`${e.level}: ${e.message}`);
        break;
      default:
        break;
    }
  };
}
