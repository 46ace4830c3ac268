import { readFileSync } from 'node:fs';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { z } from 'zod';
import { AugmentationSchema, RunConfigSchema, type Augmentation, type RunConfig } from './config.js';
import { DptrainError } from './errors.js';

/**
 * One place for every default of a run: the schema's own defaults, plus those that depend on the backbone
 * (preprocessing, the fine-tune learning rate and what to unfreeze). The CLI's flags, a `--config` file and a
 * library caller all end here, so each gets the same config for the same settings.
 */

/** A run config as a file or a caller gives it: any subset of RunConfig, nested the same way. */
export type RunConfigOverrides = { [key: string]: unknown };

/** `--augment`: Keras-style augmentation ranges (rotation 20°, shifts 0.1, shear 10°, zoom 0.1, horizontal flip). */
export const AUGMENT_PRESET: Readonly<Augmentation> = Object.freeze(
  AugmentationSchema.parse({ rotationRange: 20, widthShiftRange: 0.1, heightShiftRange: 0.1, shearRange: 10, zoomRange: 0.1, horizontalFlip: true }),
);

/** `--no-augment`: every range 0, no flips. */
export const NO_AUGMENTATION: Readonly<Augmentation> = Object.freeze(AugmentationSchema.parse({}));

/** The settings whose defaults depend on the backbone. */
export interface BackboneDefaults {
  preprocess: RunConfig['preprocess'];
  fineTuneLearningRate: number;
  unfreeze: string | undefined;
  labelSmoothing: number;
}

/**
 * The backbone-dependent defaults: VGG16-shaped backbones follow the Keras VGG16 recipe; the others get what was
 * chosen on MobileNetV2's validation split (scenes; docs/training.md, "Real data"): label smoothing 0.1.
 */
export function backboneDefaults(kind: string): BackboneDefaults {
  const isVgg = kind === 'vgg16' || kind === 'tiny-vgg';
  return {
    preprocess: isVgg ? 'caffe' : 'unit',
    // measured on MobileNetV2 (scenes): 1e-4 beats 1e-5 by ~1.5 test points in the same 5 epochs
    fineTuneLearningRate: isVgg ? 1e-5 : 1e-4,
    unfreeze: isVgg ? 'block5' : undefined,
    labelSmoothing: isVgg ? 0 : 0.1,
  };
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `over` on top of `base`, object by object; an undefined value in `over` keeps `base`'s. */
export function mergeConfigOverrides(base: RunConfigOverrides, over: RunConfigOverrides): RunConfigOverrides {
  const out: RunConfigOverrides = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    out[k] = isPlainObject(v) && isPlainObject(out[k]) ? mergeConfigOverrides(out[k] as RunConfigOverrides, v) : v;
  }
  return out;
}

function unwrap(schema: z.ZodTypeAny): z.ZodTypeAny {
  let s = schema;
  while (s instanceof z.ZodDefault || s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s._def.innerType as z.ZodTypeAny;
  return s;
}

/** Paths of keys that the schema does not know (zod drops them silently; a config file must not). */
export function unknownConfigKeys(value: unknown, schema: z.ZodTypeAny = RunConfigSchema, at = ''): string[] {
  const s = unwrap(schema);
  if (!(s instanceof z.ZodObject) || !isPlainObject(value)) return [];
  const shape = s.shape as Record<string, z.ZodTypeAny>;
  return Object.entries(value).flatMap(([k, v]) => {
    const path = at ? `${at}.${k}` : k;
    return shape[k] ? unknownConfigKeys(v, shape[k], path) : [path];
  });
}

/** Resolves every default and validates: the RunConfig a run uses. `source` names where the values came from. */
export function resolveRunConfig(overrides: RunConfigOverrides, source = 'run config'): RunConfig {
  const unknown = unknownConfigKeys(overrides);
  if (unknown.length > 0) throw new DptrainError('E_CONFIG', `${source}: unknown key${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}`);
  if (overrides.dataDir === undefined) throw new DptrainError('E_CONFIG', `${source}: no data directory (--data DIR, or dataDir in the config file)`);
  const backbone = isPlainObject(overrides.backbone) ? overrides.backbone : {};
  const d = backboneDefaults(typeof backbone.kind === 'string' ? backbone.kind : 'vgg16');
  const head = isPlainObject(overrides.headPhase) ? overrides.headPhase : {};
  const fine = isPlainObject(overrides.fineTunePhase) ? overrides.fineTunePhase : {};
  const input = {
    ...overrides,
    preprocess: overrides.preprocess ?? d.preprocess,
    labelSmoothing: overrides.labelSmoothing ?? d.labelSmoothing,
    headPhase: { epochs: 10, learningRate: 1e-3, ...head },
    fineTunePhase: { epochs: 5, learningRate: d.fineTuneLearningRate, ...(d.unfreeze ? { unfreeze: d.unfreeze } : {}), ...fine },
  };
  const r = RunConfigSchema.safeParse(input);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new DptrainError('E_CONFIG', `${source}: ${issues.join('; ')}`);
  }
  return r.data;
}

/** Reads a `--config` file: YAML or JSON (YAML 1.2 reads both), one object of RunConfig keys. */
export function readConfigFile(file: string): RunConfigOverrides {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new DptrainError('E_CONFIG', `--config ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (e) {
    throw new DptrainError('E_CONFIG', `--config ${file}: not YAML or JSON: ${(e as Error).message.split('\n')[0]}`);
  }
  if (value === null || value === undefined) return {};
  if (!isPlainObject(value))
    throw new DptrainError('E_CONFIG', `--config ${file}: expected an object of run settings, got ${Array.isArray(value) ? 'a list' : typeof value}`);
  return value;
}

/** The resolved config as YAML, as written to RUN/config.yaml and shown by --print-config. */
export function runConfigToYaml(config: RunConfig): string {
  return `# dptrain run config: every setting of the run, defaults resolved. Reproduce with: dptrain train --config THIS_FILE\n${stringifyYaml(config)}`;
}

/** Every default of the schema, for help texts (`dataDir` is a placeholder). */
export const RUN_CONFIG_DEFAULTS: RunConfig = RunConfigSchema.parse({ dataDir: '' });
