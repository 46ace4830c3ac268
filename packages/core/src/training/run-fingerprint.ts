import type { RunConfig } from '../config.js';
import type { PhaseName } from '../events/types.js';

/**
 * The settings a run's weights depend on, flattened to `name → JSON value`, stored in each checkpoint so
 * that `--resume` can refuse a run whose settings changed. Left out on purpose, as safe to change on resume:
 * the epoch counts (but see `resumeMismatches`), checkpointEvery, the data directory (the data set hash is
 * checked instead), skipBad (its effect is in the data set hash), cacheFeatures (the same numbers, cached or
 * not), the image size limit and the join content hash.
 */
export type RunFingerprint = Record<string, string>;

/** Builds the fingerprint of a run configuration. */
export function runFingerprint(config: RunConfig): RunFingerprint {
  const b = config.backbone;
  const entries: Record<string, unknown> = {
    classNames: config.classNames ?? null,
    'backbone.kind': b.kind,
    'backbone.path': b.path ?? null,
    'backbone.weights': b.weights ?? null,
    'backbone.cut': b.cut ?? null,
    'backbone.inputSize': b.inputSize ?? null,
    'backbone.tinyWidths': b.tinyWidths ?? null,
    preprocess: config.preprocess,
    head: config.head,
    'headPhase.learningRate': config.headPhase.learningRate,
    'headPhase.epochs': config.headPhase.epochs,
    'fineTunePhase.learningRate': config.fineTunePhase.learningRate,
    'fineTunePhase.unfreeze': config.fineTunePhase.unfreeze ?? null,
    batchSize: config.batchSize,
    microBatch: config.microBatch,
    seed: config.seed,
    validationSplit: config.validationSplit,
    augmentation: config.augmentation,
    patience: config.patience,
    reduceLrFactor: config.reduceLrFactor,
    reduceLrPatience: config.reduceLrPatience,
    tta: config.tta,
    cachedViews: config.cachedViews,
    fp16Gradients: config.fp16Gradients,
  };
  return Object.fromEntries(Object.entries(entries).map(([k, v]) => [k, JSON.stringify(v)]));
}

/** Where the checkpoint stands, which decides whether the head phase's epoch count may still change. */
export interface ResumePosition {
  phase: PhaseName;
  phaseDone: boolean;
}

/**
 * Lists the settings that differ between a checkpoint's fingerprint and the current one, as
 * `name: stored → now` lines; empty when the run may resume. `headPhase.epochs` may change while the head
 * phase is still running (it only moves the end), not once fine-tuning began (it numbers fine-tuning's epochs).
 */
export function resumeMismatches(stored: RunFingerprint, current: RunFingerprint, at: ResumePosition): string[] {
  const headEpochsFixed = at.phase !== 'head' || at.phaseDone;
  const names = new Set([...Object.keys(stored), ...Object.keys(current)]);
  const out: string[] = [];
  for (const name of names) {
    if (name === 'headPhase.epochs' && !headEpochsFixed) continue;
    const a = stored[name];
    const b = current[name];
    if (a !== b) out.push(`${name}: ${a ?? '(not recorded)'} → ${b ?? '(not set)'}`);
  }
  return out;
}
