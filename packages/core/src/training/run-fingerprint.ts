import type { RunConfig } from '../config.js';
import { RUN_CONFIG_DEFAULTS } from '../config-resolve.js';
import { isAugmenting, normalizeAugmentation } from '../data/augment.js';
import type { PhaseName } from '../events/types.js';

/**
 * The settings a run's weights depend on, flattened to `dotted.name → JSON value`, stored in each checkpoint so
 * that `--resume` can refuse a run whose settings changed. Every RunConfig setting counts except those in
 * RESUME_SAFE_SETTINGS, so a setting added later counts by default.
 */
export type RunFingerprint = Record<string, string>;

/**
 * Settings that may change on resume: the epoch counts (the head phase's only while it runs, see
 * resumeMismatches), the checkpoint frequency, the data directory (the data set hash is checked instead),
 * skipBad (its effect is in the data set hash), cacheFeatures (the same numbers, cached or not), the image size
 * limit and the join content hash.
 */
export const RESUME_SAFE_SETTINGS: readonly string[] = [
  'dataDir',
  'checkpointEvery',
  'skipBad',
  'cacheFeatures',
  'maxImageBytes',
  'contentHash',
  'contentSampleSize',
  'headPhase.epochs',
  'fineTunePhase.epochs',
];

function flatten(value: unknown, prefix: string, out: RunFingerprint): void {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
    return;
  }
  if (value !== undefined) out[prefix] = JSON.stringify(value);
}

/**
 * Builds the fingerprint of a run configuration (head epochs included: they number fine-tuning's epochs). The
 * number of cached augmented views counts only when the run augments: without augmentation it changes nothing, so it
 * is recorded as 0 there (the value that checkpoints written before views existed, or without augmentation, hold).
 */
export function runFingerprint(config: RunConfig): RunFingerprint {
  const all: RunFingerprint = {};
  flatten(config, '', all);
  if (!isAugmenting(normalizeAugmentation(config.augmentation))) all.cachedViews = JSON.stringify(0);
  const out: RunFingerprint = {};
  for (const [k, v] of Object.entries(all)) if (k === 'headPhase.epochs' || !RESUME_SAFE_SETTINGS.includes(k)) out[k] = v;
  return out;
}

const DEFAULTS = runFingerprint(RUN_CONFIG_DEFAULTS);

/** Where the checkpoint stands, which decides whether the head phase's epoch count may still change. */
export interface ResumePosition {
  phase: PhaseName;
  phaseDone: boolean;
}

/**
 * Lists the settings that differ between a checkpoint's fingerprint and the current one, as
 * `name: stored → now` lines; empty when the run may resume. `headPhase.epochs` may change while the head
 * phase is still running (it only moves the end), not once fine-tuning began. A setting the checkpoint does not
 * record (written before the setting existed) counts only when it is now set to something else than its default.
 */
export function resumeMismatches(stored: RunFingerprint, current: RunFingerprint, at: ResumePosition): string[] {
  const headEpochsFixed = at.phase !== 'head' || at.phaseDone;
  const names = [...new Set([...Object.keys(stored), ...Object.keys(current)])].sort();
  const out: string[] = [];
  for (const name of names) {
    if (name === 'headPhase.epochs' && !headEpochsFixed) continue;
    if (RESUME_SAFE_SETTINGS.includes(name) && name !== 'headPhase.epochs') continue;
    const a = stored[name];
    const b = current[name];
    if (a === undefined && b === DEFAULTS[name]) continue;
    if (a !== b) out.push(`${name}: ${a ?? '(not set)'} → ${b ?? '(not set)'}`);
  }
  return out;
}
