import type { RunConfig } from '../config.js';
import { loadDataset } from '../data/load.js';
import { stratifiedSplit } from '../data/stratified-split.js';
import { validateDataset } from '../data/validate.js';
import type { EventBus } from '../events/bus.js';
import type { Clock } from '../util/clock.js';
import type { TrainData } from './recipe.js';

export interface PrepareDataOptions {
  /** Decode every image during validation (false: existence + magic bytes only). Default true. */
  decode?: boolean;
  /** Images checked at once. Default 4. */
  concurrency?: number;
}

/**
 * Reads the data directory of the config, validates every image (progress events, task 'validate'; one
 * E_DATA_INVALID error listing all culprits unless `config.skipBad`), then splits the labelled samples
 * stratified by (seed, validationSplit).
 */
export async function prepareTrainData(config: RunConfig, bus: EventBus, clock: Clock, options: PrepareDataOptions = {}): Promise<TrainData> {
  const loaded = loadDataset(config.dataDir, config.classNames ? { classNames: config.classNames } : {});
  let lastEmit = -1;
  const { dataset, dropped } = await validateDataset(loaded, {
    skipBad: config.skipBad,
    maxImageBytes: config.maxImageBytes,
    ...(options.decode !== undefined ? { decode: options.decode } : {}),
    ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
    onProgress: (done, total) => {
      const pct = Math.floor((100 * done) / Math.max(1, total));
      if (pct !== lastEmit || done === total) {
        lastEmit = pct;
        bus.emit({ type: 'progress', time: clock.now(), task: 'validate', done, total });
      }
    },
  });
  if (dropped.length > 0) {
    bus.emit({
      type: 'log',
      time: clock.now(),
      level: 'warn',
      message: `--skip-bad: dropped ${dropped.length} bad input(s): ${dropped
        .slice(0, 5)
        .map((c) => `${c.file}${c.line ? `:${c.line}` : ''} (${c.reason})`)
        .join(', ')}${dropped.length > 5 ? ', ...' : ''}`,
    });
  }
  const split = stratifiedSplit(dataset.labelled, { fraction: config.validationSplit, seed: config.seed });
  return { dataset, train: split.train, val: split.validation, test: dataset.test, dropped };
}
