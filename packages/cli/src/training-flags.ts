import * as path from 'node:path';
import { Option, type Command } from 'commander';
import {
  ADAMW_DEFAULT_WEIGHT_DECAY,
  AUGMENT_PRESET,
  backboneDefaults,
  DEFAULT_UNFREEZE_BLOCKS,
  MEASURED_UNFREEZE,
  DEFAULT_UNFREEZE_TOP,
  VGG16_DEFAULTS,
  type AugmentationInput,
  DptrainError,
  isAugmenting,
  normalizeAugmentation,
  NO_AUGMENTATION,
  RUN_CONFIG_DEFAULTS as D,
  mergeConfigOverrides,
  readConfigFile,
  resolveRunConfig,
  runConfigToYaml,
  type RunConfig,
  type RunConfigOverrides,
} from '@dptrain/core';

/** Options object produced by commander for the training flags below. */
export interface TrainingFlagValues {
  data?: string;
  classNames?: string;
  backbone?: string;
  cut?: string;
  preprocess?: 'caffe' | 'tf' | 'unit';
  weights?: string;
  inputSize?: string;
  epochs?: string;
  fineTuneEpochs?: string;
  lr?: string;
  fineTuneLr?: string;
  unfreeze?: string;
  batchSize?: string;
  microBatch?: string;
  seed?: string;
  validationSplit?: string;
  augment?: boolean;
  rotationRange?: string;
  zoomRange?: string;
  shiftRange?: string;
  shearRange?: string;
  horizontalFlip?: boolean;
  headUnits?: string;
  dropout?: string;
  pooling?: 'gap' | 'flatten';
  patience?: string;
  cache?: boolean;
  augmentViews?: string;
  cachedViews?: string;
  skipBad?: boolean;
  fp16?: boolean;
  gradientPrecision?: 'fp32' | 'fp16' | 'bf16';
  checkpointEvery?: string;
  tta?: 'none' | 'flip';
  precision?: 'fp32' | 'bf16' | 'auto';
  lrSchedule?: 'constant' | 'cosine' | 'step' | 'plateau';
  warmupEpochs?: string;
  minLr?: string;
  lrStepEpochs?: string;
  lrDecay?: string;
  fineTuneLrSchedule?: 'constant' | 'cosine' | 'step' | 'plateau';
  fineTuneWarmupEpochs?: string;
  scaleLr?: boolean;
  referenceBatch?: string;
  plateauFactor?: string;
  plateauPatience?: string;
  optimizer?: 'adam' | 'adamw' | 'sgd';
  weightDecay?: string;
  momentum?: string;
  nesterov?: boolean;
  labelSmoothing?: string;
  classWeight?: string;
  config?: string;
  printConfig?: boolean;
  contentHash?: 'none' | 'sampled' | 'full';
  maxImageBytes?: string;
  clipNorm?: string;
}

const LR_SCHEDULES = ['constant', 'cosine', 'step', 'plateau'];
// the backbone-dependent defaults, as resolveRunConfig applies them
const VGG = backboneDefaults('vgg16');
const A = AUGMENT_PRESET;
const OTHER = backboneDefaults('layers');
/** A default as the help names it: one value, or VGG16's and the other backbones' where they differ. */
const byBackbone = (vgg: unknown, other: unknown): string => (vgg === other ? `${vgg}` : `${vgg} for VGG16, ${other} for other backbones`);
const augmentDefault = (a: AugmentationInput): string => (isAugmenting(normalizeAugmentation(a)) ? 'on' : 'off');

/** Schedule, optimizer and loss flags (their defaults live in core's resolveRunConfig and are named in the help). */
function addRecipeFlags(cmd: Command): Command {
  return cmd
    .addOption(
      new Option(
        '--lr-schedule <kind>',
        `learning-rate schedule of both phases: constant, cosine (to --min-lr), step (x --lr-decay every --lr-step-epochs) or plateau (halve on a validation-loss plateau) (default: ${byBackbone(VGG.lrSchedule, OTHER.lrSchedule)})`,
      ).choices(LR_SCHEDULES),
    )
    .option(
      '--warmup-epochs <n>',
      `linear learning-rate warmup at the start of each phase, in epochs, counted per step (default: ${byBackbone(VGG.warmupEpochs, OTHER.warmupEpochs)})`,
    )
    .option('--min-lr <rate>', `cosine: the rate a phase ends at; plateau: the lowest rate (default: ${D.minLr})`)
    .option('--lr-step-epochs <n>', 'step schedule: epochs between decays (default: a third of the phase)')
    .option('--lr-decay <f>', `step schedule: factor of each decay (default: ${D.lrDecay})`)
    .addOption(new Option('--fine-tune-lr-schedule <kind>', 'phase 2 schedule, when it differs from --lr-schedule').choices(LR_SCHEDULES))
    .option('--fine-tune-warmup-epochs <n>', 'phase 2 warmup epochs, when they differ from --warmup-epochs')
    .option('--scale-lr', 'scale both learning rates by global batch / --reference-batch (linear scaling rule)')
    .option('--reference-batch <n>', `with --scale-lr: the batch size the learning rates are meant for (default: ${D.referenceBatch})`)
    .option('--plateau-factor <f>', `plateau schedule: factor of each reduction (default: ${D.reduceLrFactor})`)
    .option('--plateau-patience <n>', `plateau schedule: epochs without validation-loss improvement before a reduction (default: ${D.reduceLrPatience})`)
    .addOption(
      new Option('--optimizer <name>', `adam, adamw (Adam + decoupled weight decay) or sgd (default: ${D.optimizer})`).choices(['adam', 'adamw', 'sgd']),
    )
    .option('--weight-decay <wd>', `decoupled weight decay, w -= lr*wd*w before each update (default: ${ADAMW_DEFAULT_WEIGHT_DECAY} for adamw, else 0)`)
    .option('--momentum <m>', `sgd momentum (default: ${D.momentum})`)
    .option('--nesterov', 'sgd: Nesterov momentum')
    .option(
      '--label-smoothing <eps>',
      `cross-entropy label smoothing: targets y*(1-eps) + eps/C (default: ${byBackbone(VGG.labelSmoothing, OTHER.labelSmoothing)})`,
    )
    .option(
      '--class-weight <auto|none|w0,w1,...>',
      `per-class loss weights: 'auto' balances the training split's class counts (n / (C n_c)) (default: ${D.classWeight})`,
    );
}

/**
 * Adds the training flags shared by `train`, `single` and `coordinator`. They carry no defaults of their own: an
 * unset flag leaves the value to `--config FILE` or to core's resolveRunConfig, whose defaults the help names.
 */
export function addTrainingFlags(cmd: Command): Command {
  const base = cmd
    .option('--config <file>', 'run settings from a YAML or JSON file (as written to RUN/config.yaml); flags override it')
    .option('--print-config', 'print the resolved run config as YAML and exit')
    .option(
      '--data <dir>',
      'data directory (competition layout: train.csv, test.csv, SceneImages/; or one folder per class); required unless --config names dataDir',
    )
    .option('--class-names <list>', 'comma-separated class names (default: from the data)')
    .option('--backbone <name|path>', `'vgg16', 'tiny-vgg', or a tfjs layers model directory (default: ${D.backbone.kind})`)
    .option('--cut <layer>', `layer whose output feeds the head (default: ${VGG16_DEFAULTS.cut} for VGG16)`)
    .addOption(
      new Option(
        '--preprocess <mode>',
        `pixel scaling: caffe, tf ([-1,1]) or unit ([0,1]) (default: ${VGG.preprocess} for VGG16, ${OTHER.preprocess} otherwise)`,
      ).choices(['caffe', 'tf', 'unit']),
    )
    .option('--weights <file>', 'VGG16 weights (.h5 or tfjs dir); default ~/.keras/models/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5')
    .option('--input-size <HxW>', `input size, e.g. 150x150 (default: ${VGG16_DEFAULTS.inputSize.join('x')} for VGG16, read from the model otherwise)`)
    .option('--epochs <n>', `phase 1 (head) epochs (default: ${D.headPhase.epochs})`)
    .option('--fine-tune-epochs <n>', `phase 2 (fine-tune) epochs (default: ${byBackbone(VGG.fineTuneEpochs, OTHER.fineTuneEpochs)})`)
    .option('--lr <rate>', `phase 1 learning rate (default: ${D.headPhase.learningRate})`)
    .option(
      '--fine-tune-lr <rate>',
      `phase 2 learning rate (default: ${VGG.fineTuneLearningRate} for VGG16, ${OTHER.fineTuneLearningRate} for other backbones)`,
    )
    .option(
      '--unfreeze <what>',
      `phase 2: layer-name prefix, 'last:K' or 'top:P%' (default: '${VGG.unfreeze}' for VGG16, ${MEASURED_UNFREEZE.map((k) => `'${k.unfreeze}' for ${k.architecture}`).join(', ')}, else the last ${DEFAULT_UNFREEZE_BLOCKS} numbered blocks, else ${DEFAULT_UNFREEZE_TOP})`,
    )
    .option('--batch-size <n>', `global batch size, split across workers (default: ${D.batchSize})`)
    .option(
      '--micro-batch <n>',
      `samples per gradient computation; gradients are averaged over micro-batches along a fixed tree, so 1, 2 or 4 workers give the same weights (0: each worker's slice at once) (default: ${D.microBatch})`,
    )
    .option('--seed <n>', `random seed (default: ${D.seed})`)
    .option('--validation-split <f>', `stratified validation fraction (default: ${D.validationSplit})`)
    .option(
      '--augment',
      `Keras-style augmentation (rotation ${A.rotationRange}, shifts ${A.widthShiftRange}, shear ${A.shearRange}, zoom ${A.zoomRange}, horizontal flip) (default: ${byBackbone(augmentDefault(VGG.augmentation), augmentDefault(OTHER.augmentation))})`,
    )
    .option('--no-augment', 'no augmentation')
    .option('--rotation-range <deg>', 'augmentation rotation range in degrees')
    .option('--zoom-range <f>', 'augmentation zoom range')
    .option('--shift-range <f>', 'augmentation width and height shift range')
    .option('--shear-range <deg>', 'augmentation shear range in degrees')
    .option('--horizontal-flip', 'augmentation: random horizontal flips')
    .option('--head-units <n>', `hidden units of the head (default: ${D.head.units})`)
    .option('--dropout <rate>', `head dropout rate (default: ${D.head.dropout})`)
    .addOption(new Option('--pooling <kind>', `head pooling (default: ${D.head.pooling})`).choices(['gap', 'flatten']))
    .option('--patience <n>', `early-stopping patience (epochs, on validation accuracy) (default: ${D.patience})`)
    .option('--no-cache', 'do not cache frozen features')
    .option(
      '--augment-views <k>',
      `with augmentation: K augmented views per training image, their frozen features computed once and cached; each epoch trains on one view per image (0: a new augmentation every epoch, uncached) (default: ${D.cachedViews})`,
    )
    .option('--cached-views <k>', 'the same as --augment-views')
    .option('--skip-bad', 'drop bad images/rows and report them instead of failing')
    .addOption(
      new Option('--gradient-precision <p>', 'precision of the gradients on the wire; weights always travel as fp32 (default: fp32)').choices([
        'fp32',
        'fp16',
        'bf16',
      ]),
    )
    .option('--fp16', 'same as --gradient-precision fp16')
    .option('--checkpoint-every <steps>', `checkpoint every K steps (0: phase ends only) (default: ${D.checkpointEvery})`)
    .addOption(
      new Option('--tta <mode>', `test-time augmentation of evaluation and prediction: flip (mean with the mirror image) or none (default: ${D.tta})`).choices([
        'none',
        'flip',
      ]),
    )
    .addOption(
      new Option(
        '--content-hash <mode>',
        `image content each worker's copy must match at join: sampled (a fixed sample of files), full (every file) or none (names and labels only) (default: ${D.contentHash})`,
      ).choices(['none', 'sampled', 'full']),
    )
    .option('--max-image-bytes <n>', `largest image file read; larger files are refused before reading (default: ${D.maxImageBytes})`)
    .addOption(precisionOption())
    .option('--clip-norm <n>', `clip the averaged gradient to this global L2 norm before the optimizer step (0: off) (default: ${D.clipNorm})`);

  return addRecipeFlags(base);
}

/** `--precision`: of the convolutions and matmuls (bf16: native backend, AVX512-BF16 or AMX); auto is resolved where the run starts. */
export function precisionOption(): Option {
  return new Option(
    '--precision <p>',
    `fp32, bf16 (native backend on AVX512-BF16/AMX CPUs; fp32 accumulation) or auto (bf16 where it can run) (default: ${D.precision})`,
  ).choices(['fp32', 'bf16', 'auto']);
}

function num(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new DptrainError('E_CONFIG', `${flag}: '${value}' is not a number`);
  return n;
}

function inputSize(value: string | undefined): [number, number] | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+)x(\d+)$/.exec(value);
  if (!m) throw new DptrainError('E_CONFIG', `--input-size: '${value}' is not HxW (e.g. 150x150)`);
  return [Number(m[1]), Number(m[2])];
}

function classWeight(value: string | undefined): 'auto' | 'none' | number[] | undefined {
  if (value === undefined || value === 'auto' || value === 'none') return value;
  return value.split(',').map((w) => {
    const n = num(w.trim(), '--class-weight');
    if (n === undefined || !(n > 0)) throw new DptrainError('E_CONFIG', `--class-weight: '${w}' is not a positive weight (give auto, none or w0,w1,...)`);
    return n;
  });
}

/** The run settings that the given flags set (nothing for a flag left out), nested as RunConfig. */
export function flagOverrides(flags: TrainingFlagValues): RunConfigOverrides {
  const shift = num(flags.shiftRange, '--shift-range');
  const preset = flags.augment === undefined ? {} : flags.augment ? AUGMENT_PRESET : NO_AUGMENTATION;
  const backbone = flags.backbone;
  return {
    dataDir: flags.data,
    classNames: flags.classNames ? flags.classNames.split(',').map((s) => s.trim()) : undefined,
    backbone: {
      kind: backbone === undefined ? undefined : backbone === 'vgg16' || backbone === 'tiny-vgg' ? backbone : 'layers',
      path: backbone === undefined || backbone === 'vgg16' || backbone === 'tiny-vgg' ? undefined : backbone,
      cut: flags.cut,
      weights: flags.weights,
      inputSize: inputSize(flags.inputSize),
    },
    preprocess: flags.preprocess,
    head: { units: num(flags.headUnits, '--head-units'), dropout: num(flags.dropout, '--dropout'), pooling: flags.pooling },
    headPhase: { epochs: num(flags.epochs, '--epochs'), learningRate: num(flags.lr, '--lr') },
    fineTunePhase: { epochs: num(flags.fineTuneEpochs, '--fine-tune-epochs'), learningRate: num(flags.fineTuneLr, '--fine-tune-lr'), unfreeze: flags.unfreeze },
    batchSize: num(flags.batchSize, '--batch-size'),
    microBatch: num(flags.microBatch, '--micro-batch'),
    seed: num(flags.seed, '--seed'),
    validationSplit: num(flags.validationSplit, '--validation-split'),
    augmentation: mergeConfigOverrides(preset, {
      rotationRange: num(flags.rotationRange, '--rotation-range'),
      widthShiftRange: shift,
      heightShiftRange: shift,
      shearRange: num(flags.shearRange, '--shear-range'),
      zoomRange: num(flags.zoomRange, '--zoom-range'),
      horizontalFlip: flags.horizontalFlip,
    }),
    patience: num(flags.patience, '--patience'),
    // commander sets `cache` to true unless --no-cache was given
    cacheFeatures: flags.cache === false ? false : undefined,
    cachedViews: num(flags.augmentViews, '--augment-views') ?? num(flags.cachedViews, '--cached-views'),
    skipBad: flags.skipBad,
    fp16Gradients: flags.fp16,
    gradientPrecision: gradientPrecisionFlag(flags),
    checkpointEvery: num(flags.checkpointEvery, '--checkpoint-every'),
    tta: flags.tta,
    precision: flags.precision,
    lrSchedule: flags.lrSchedule,
    warmupEpochs: num(flags.warmupEpochs, '--warmup-epochs'),
    minLr: num(flags.minLr, '--min-lr'),
    lrStepEpochs: num(flags.lrStepEpochs, '--lr-step-epochs'),
    lrDecay: num(flags.lrDecay, '--lr-decay'),
    fineTuneLrSchedule: flags.fineTuneLrSchedule,
    fineTuneWarmupEpochs: num(flags.fineTuneWarmupEpochs, '--fine-tune-warmup-epochs'),
    scaleLr: flags.scaleLr,
    referenceBatch: num(flags.referenceBatch, '--reference-batch'),
    reduceLrFactor: num(flags.plateauFactor, '--plateau-factor'),
    reduceLrPatience: num(flags.plateauPatience, '--plateau-patience'),
    optimizer: flags.optimizer,
    weightDecay: num(flags.weightDecay, '--weight-decay'),
    momentum: num(flags.momentum, '--momentum'),
    nesterov: flags.nesterov,
    labelSmoothing: num(flags.labelSmoothing, '--label-smoothing'),
    classWeight: classWeight(flags.classWeight),
    contentHash: flags.contentHash,
    maxImageBytes: num(flags.maxImageBytes, '--max-image-bytes'),
    clipNorm: num(flags.clipNorm, '--clip-norm'),
  };
}

/** Drops undefined values, so that only what was set reaches the merge (and unknown-key checks see real keys). */
function defined(value: RunConfigOverrides): RunConfigOverrides {
  const out: RunConfigOverrides = {};
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined) continue;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
      const inner = defined(v as RunConfigOverrides);
      if (Object.keys(inner).length > 0) out[k] = inner;
    } else out[k] = v;
  }
  return out;
}

/** The validated RunConfig of a command: `--config FILE` (if any), then the flags on top, then every default. */
export function toRunConfig(flags: TrainingFlagValues): RunConfig {
  const file = flags.config ? readConfigFile(flags.config) : {};
  const merged = mergeConfigOverrides(file, defined(flagOverrides(flags)));
  return resolveRunConfig(merged, flags.config ? `--config ${flags.config} with the flags` : 'the flags');
}

/** `--print-config`: the resolved run config as YAML on stdout. True when it printed (the command then ends). */
export function printConfigIfAsked(flags: TrainingFlagValues, config: RunConfig): boolean {
  if (!flags.printConfig) return false;
  process.stdout.write(runConfigToYaml(config));
  return true;
}

/** `--gradient-precision`, with the older `--fp16` as its fp16 spelling (both given and different: E_CONFIG). */
function gradientPrecisionFlag(flags: TrainingFlagValues): TrainingFlagValues['gradientPrecision'] {
  if (flags.fp16 && flags.gradientPrecision !== undefined && flags.gradientPrecision !== 'fp16') {
    throw new DptrainError('E_CONFIG', `--fp16 and --gradient-precision ${flags.gradientPrecision} disagree: give one of them`);
  }
  return flags.gradientPrecision ?? (flags.fp16 ? 'fp16' : undefined);
}

/** The run directory of a cluster command: the one resumed, else --out, else runs/<ISO time>. */
export function runDirOf(flags: { resume?: string; out?: string }): string {
  return flags.resume ?? flags.out ?? path.join('runs', new Date().toISOString().replace(/[:.]/g, '-'));
}
