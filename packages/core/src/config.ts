import { z } from 'zod';

/**
 * The run configuration: everything a replica needs to rebuild the same model and read the same data.
 * It is serialisable (sent to workers on join) and validated with zod on both ends.
 * Defaults follow the Keras recipe: Adam 1e-3 for the head, 1e-5 for fine-tuning block5 (backboneDefaults for others).
 */
export const AugmentationSchema = z.object({
  /** Degrees, like Keras `rotation_range`. Default 0. */
  rotationRange: z.number().min(0).max(180).default(0),
  /** Fraction of width (or pixels if >= 1), like Keras `width_shift_range`. Default 0. */
  widthShiftRange: z.number().min(0).default(0),
  /** Fraction of height (or pixels if >= 1), like Keras `height_shift_range`. Default 0. */
  heightShiftRange: z.number().min(0).default(0),
  /** Shear angle in degrees (Keras `shear_range`). Default 0. */
  shearRange: z.number().min(0).default(0),
  /** Zoom range [1-z, 1+z] (Keras `zoom_range`). Default 0. */
  zoomRange: z.number().min(0).max(1).default(0),
  /** Random horizontal flip. Default false. */
  horizontalFlip: z.boolean().default(false),
  /** How points outside the input are filled (Keras `fill_mode`). Default 'nearest'. */
  fillMode: z.enum(['nearest', 'constant', 'reflect', 'wrap']).default('nearest'),
  /** Fill value for fillMode 'constant'. Default 0. */
  cval: z.number().default(0),
});
export type Augmentation = z.infer<typeof AugmentationSchema>;

export const PreprocessModeSchema = z.enum(['caffe', 'tf', 'unit']);
export type PreprocessMode = z.infer<typeof PreprocessModeSchema>;

export const BackboneSpecSchema = z.object({
  /** 'vgg16' or a path to a tfjs layers model directory / model.json. Default 'vgg16'. */
  kind: z.union([z.literal('vgg16'), z.literal('tiny-vgg'), z.literal('layers')]).default('vgg16'),
  /** For kind 'layers': path of the model directory or model.json. */
  path: z.string().optional(),
  /** Layer whose output is the feature map fed to the head. VGG16: 'block5_pool'. */
  cut: z.string().optional(),
  /** Weights file for VGG16 (.h5 or tfjs dir). Default: ~/.keras/models/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 if present, else random init with a warning. */
  weights: z.string().optional(),
  /** Input size [height, width]; read from the model for kind 'layers'. VGG16 default [150, 150]. */
  inputSize: z.tuple([z.number().int().positive(), z.number().int().positive()]).optional(),
  /** For 'tiny-vgg' (tests and demo): channel widths of the 5 blocks. Default [8, 16, 32, 32, 32]. */
  tinyWidths: z.array(z.number().int().positive()).length(5).optional(),
});
export type BackboneSpec = z.infer<typeof BackboneSpecSchema>;

export const HeadSpecSchema = z.object({
  /** 'gap' (GlobalAveragePooling2D) or 'flatten'. Default 'gap'. */
  pooling: z.enum(['gap', 'flatten']).default('gap'),
  /** Hidden Dense units. Default 256. */
  units: z.number().int().positive().default(256),
  /** Dropout rate. Default 0.5. */
  dropout: z.number().min(0).max(1).default(0.5),
});
export type HeadSpec = z.infer<typeof HeadSpecSchema>;

export const PhaseSpecSchema = z.object({
  /** Epochs of this phase. */
  epochs: z.number().int().min(0),
  /** Adam learning rate. */
  learningRate: z.number().positive(),
  /**
   * Phase 2 only: what to unfreeze. A layer-name prefix ('block5' for VGG16), or 'last:K' for the last K
   * layers of the backbone (K counted back from the cut). Phase 1 trains the head only.
   */
  unfreeze: z.string().optional(),
});
export type PhaseSpec = z.infer<typeof PhaseSpecSchema>;

/** The augmentation that `--augment` turns on (the Keras ImageDataGenerator settings of the transfer-learning recipe). */
export const AUGMENT_PRESET = { rotationRange: 20, widthShiftRange: 0.1, heightShiftRange: 0.1, shearRange: 10, zoomRange: 0.1, horizontalFlip: true } as const;

/** `--no-augment`: every augmentation range 0, no flips. */
export const NO_AUGMENTATION = { rotationRange: 0, widthShiftRange: 0, heightShiftRange: 0, shearRange: 0, zoomRange: 0, horizontalFlip: false } as const;

/** The settings whose defaults depend on the backbone. */
export interface BackboneDefaults {
  /** Pixel scaling: caffe for VGG16-shaped backbones, unit otherwise. */
  preprocess: PreprocessMode;
  /** Phase 2's epochs. */
  fineTuneEpochs: number;
  /** Phase 2's learning rate: 1e-5 for VGG16-shaped backbones, 1e-4 otherwise. */
  fineTuneLearningRate: number;
  /** What phase 2 unfreezes: block5 for VGG16-shaped backbones; otherwise undefined (chooseUnfreeze's choice). */
  unfreeze: string | undefined;
  /** Cross-entropy label smoothing. */
  labelSmoothing: number;
  /** Learning-rate schedule of both phases. */
  lrSchedule: 'constant' | 'cosine' | 'step' | 'plateau';
  /** Linear warmup at the start of each phase, in epochs. */
  warmupEpochs: number;
  /** Training-time augmentation ranges (every range 0 and no flips: none); the schema fills the fields left out. */
  augmentation: Readonly<Partial<Augmentation>>;
}

/** VGG16-shaped backbones: the Keras VGG16 transfer-learning recipe. */
const VGG_RECIPE: BackboneDefaults = Object.freeze({
  preprocess: 'caffe',
  fineTuneEpochs: 5,
  fineTuneLearningRate: 1e-5,
  unfreeze: 'block5',
  labelSmoothing: 0,
  lrSchedule: 'plateau',
  warmupEpochs: 0,
  augmentation: NO_AUGMENTATION,
});

/**
 * Other (MobileNet-style) backbones: chosen on MobileNetV2's validation split of the scenes data (docs/training.md,
 * "Real data"): label smoothing 0.1 and cosine with 1 warmup epoch; augmentation (`--augment`) stays off until a
 * run shows it pays within the time limit. The fine-tune rate 1e-4 beats 1e-5 by ~1.5 test points in 5 epochs; 10
 * fine-tune epochs with MobileNetV2's deeper unfreeze point (MEASURED_UNFREEZE in models/phase-split.ts) fit the
 * 20-minute budget on 2 cores since the fused batch-norm and clip gradients of the native backend.
 */
const MOBILENET_RECIPE: BackboneDefaults = Object.freeze({
  preprocess: 'unit',
  fineTuneEpochs: 10,
  fineTuneLearningRate: 1e-4,
  unfreeze: undefined,
  labelSmoothing: 0.1,
  lrSchedule: 'cosine',
  warmupEpochs: 1,
  augmentation: NO_AUGMENTATION,
});

/** The backbone-dependent defaults: VGG16-shaped backbones (vgg16, tiny-vgg) get VGG_RECIPE, the others MOBILENET_RECIPE. */
export function backboneDefaults(kind: string): BackboneDefaults {
  return kind === 'vgg16' || kind === 'tiny-vgg' ? VGG_RECIPE : MOBILENET_RECIPE;
}

/** Epochs and learning rate of the head phase, which do not depend on the backbone (the Keras recipe: Adam 1e-3). */
export const PHASE_DEFAULTS = { headPhase: { epochs: 10, learningRate: 1e-3 } } as const;

const VGG_DEFAULTS = backboneDefaults('vgg16');

/** Precision of gradients on the wire: fp32, fp16 (IEEE half) or bf16 (bfloat16, fp32's range with 8 bits of mantissa). */
export const GradientPrecisionSchema = z.enum(['fp32', 'fp16', 'bf16']);
export type GradientPrecision = z.infer<typeof GradientPrecisionSchema>;

/** The gradient precision a run puts on the wire: gradientPrecision, else fp16 when the older fp16Gradients is set. */
export function wireGradientPrecision(config: { gradientPrecision?: GradientPrecision | undefined; fp16Gradients: boolean }): GradientPrecision {
  return config.gradientPrecision ?? (config.fp16Gradients ? 'fp16' : 'fp32');
}

export const RunConfigSchema = z.object({
  /** Data directory (competition layout or folder-per-class). Workers may override with their own copy. */
  dataDir: z.string(),
  /** Class names; default: from the data (labels 0..C-1, or folder names). */
  classNames: z.array(z.string()).optional(),
  backbone: BackboneSpecSchema.default({}),
  /** Pixel scaling. Default: backboneDefaults (caffe for VGG16, unit otherwise). */
  preprocess: PreprocessModeSchema.default(VGG_DEFAULTS.preprocess),
  head: HeadSpecSchema.default({}),
  /** Phase 1: head on a frozen base. */
  headPhase: PhaseSpecSchema.default({ ...PHASE_DEFAULTS.headPhase }),
  /** Phase 2: fine-tune the top block. */
  fineTunePhase: PhaseSpecSchema.default({ epochs: VGG_DEFAULTS.fineTuneEpochs, learningRate: VGG_DEFAULTS.fineTuneLearningRate, unfreeze: 'block5' }),
  /** Global batch size (split across workers). Default 32. */
  batchSize: z.number().int().positive().default(32),
  /**
   * Samples per gradient computation: a batch's gradient is the mean of its micro-batches' gradients combined
   * along a fixed tree, so 1, 2 or 4 workers (or one process) give the same weights bit for bit. A step uses at
   * most batchSize / microBatch workers. 0: each worker's whole slice at once (fastest on a GPU; results then
   * depend on the worker count). Default 8.
   */
  microBatch: z.number().int().min(0).default(8),
  /** Seed for split, shuffling, augmentation, dropout and init. Default 42. */
  seed: z.number().int().default(42),
  /** Validation fraction of the labelled data, stratified. Default 0.2. */
  validationSplit: z.number().min(0).max(0.9).default(0.2),
  augmentation: AugmentationSchema.default({}),
  /** Early stopping patience in epochs (monitor val accuracy, restore best). Default 3. */
  patience: z.number().int().min(0).default(3),
  /** ReduceLROnPlateau: factor and patience (epochs, on val loss). Default 0.5, 2. */
  reduceLrFactor: z.number().positive().max(1).default(0.5),
  reduceLrPatience: z.number().int().min(0).default(2),
  /**
   * Test-time augmentation for evaluation and prediction: 'flip' averages the class probabilities of each image
   * and its mirror image (left-right); 'none' predicts the image alone. Default 'flip'.
   */
  tta: z.enum(['none', 'flip']).default('flip'),
  /** Cache frozen features (computed once per sample). Default true when augmentation is off. */
  cacheFeatures: z.boolean().default(true),
  /**
   * With augmentation on and caching requested: K augmented views per training image, their frozen features
   * computed once and cached; each epoch trains on one view per image (`augmentViewFor`: each view once per cycle
   * of K epochs). 0: a new augmentation every epoch, uncached. Default 3.
   */
  cachedViews: z.number().int().min(0).default(3),
  /** Drop bad samples instead of failing. Default false. */
  skipBad: z.boolean().default(false),
  /** Send gradients as fp16 on the wire (the older spelling of gradientPrecision 'fp16'). Default false. */
  fp16Gradients: z.boolean().default(false),
  /** Precision of the gradients on the wire (weights always travel as fp32). Default: 'fp16' when fp16Gradients, else 'fp32'. */
  gradientPrecision: GradientPrecisionSchema.optional(),
  /** Checkpoint every K steps (0: only at phase ends). Default 50. */
  checkpointEvery: z.number().int().min(0).default(50),
  /**
   * Learning-rate schedule of both phases: 'constant', 'cosine' (to minLr), 'step' (× lrDecay every lrStepEpochs)
   * or 'plateau' (ReduceLROnPlateau on validation loss, reduceLrFactor / reduceLrPatience). Default 'plateau'.
   */
  lrSchedule: z.enum(['constant', 'cosine', 'step', 'plateau']).default('plateau'),
  /** Linear warmup at the start of each phase, in epochs (fractions allowed; counted in steps). Default 0. */
  warmupEpochs: z.number().min(0).default(0),
  /** Cosine schedule: the rate at the end of a phase. Default 0. */
  minLr: z.number().min(0).default(0),
  /** Step schedule: epochs between decays. Default: a third of the phase's epochs, at least 1. */
  lrStepEpochs: z.number().int().positive().optional(),
  /** Step schedule: factor of each decay. Default 0.1. */
  lrDecay: z.number().positive().max(1).default(0.1),
  /** Phase 2's schedule, when it differs from lrSchedule. Default: lrSchedule. */
  fineTuneLrSchedule: z.enum(['constant', 'cosine', 'step', 'plateau']).optional(),
  /** Phase 2's warmup epochs, when they differ from warmupEpochs. Default: warmupEpochs. */
  fineTuneWarmupEpochs: z.number().min(0).optional(),
  /** Scale both phases' learning rates by batchSize / referenceBatch (Goyal et al.; Horovod). Default false. */
  scaleLr: z.boolean().default(false),
  /** The batch size the learning rates are meant for, with scaleLr. Default 32. */
  referenceBatch: z.number().int().positive().default(32),
  /**
   * 'adam', 'adamw' (Adam with decoupled weight decay, Keras' default 0.004 unless weightDecay is given) or
   * 'sgd' (momentum, nesterov). Default 'adam'.
   */
  optimizer: z.enum(['adam', 'adamw', 'sgd']).default('adam'),
  /** Decoupled weight decay (w -= lr · wd · w before each update, as Keras 3 and PyTorch's AdamW). Default: 0.004 for adamw, else 0. */
  weightDecay: z.number().min(0).optional(),
  /** SGD momentum (Keras semantics). Default 0. */
  momentum: z.number().min(0).max(1).default(0),
  /** SGD Nesterov momentum. Default false. */
  nesterov: z.boolean().default(false),
  /**
   * Per-class loss weights (Keras `class_weight`): 'auto' = balanced from the training split's class counts
   * (n / (C · n_c)), resolved to numbers where the run starts; 'none'; or one weight per class. Default 'none'.
   */
  classWeight: z.union([z.literal('auto'), z.literal('none'), z.array(z.number().positive())]).default('none'),
  /** Label smoothing of the cross-entropy targets: y·(1-ε) + ε/C (Keras). Default: backboneDefaults (0 for VGG16, 0.1 otherwise). */
  labelSmoothing: z.number().min(0).max(1).default(0),
  /** Largest image file read, in bytes (larger files are refused before reading). Default 64 MiB. */
  maxImageBytes: z
    .number()
    .int()
    .positive()
    .default(64 * 1024 * 1024),
  /**
   * Content hash of the image files that each worker must match at join, besides names and labels: 'sampled'
   * (a fixed sample of `contentSampleSize` files), 'full' (every file) or 'none'. Default 'sampled'.
   */
  contentHash: z.enum(['none', 'sampled', 'full']).default('sampled'),
  /** Files hashed by contentHash 'sampled'. Default 64. */
  contentSampleSize: z.number().int().positive().default(64),
  /**
   * Precision of the convolutions and matmuls: 'bf16' (native backend on a CPU with AVX512-BF16 or AMX: bf16
   * operands, fp32 accumulation; weights, averaged gradients, Adam, loss and softmax stay fp32), 'fp32', or 'auto'
   * (bf16 where it can run, else fp32), resolved once where the run starts. Default 'fp32': on the real MobileNetV2
   * run bf16 scored 0.5 test points lower and took no less time (docs/speed.md, "bf16 accuracy").
   */
  precision: z.enum(['fp32', 'bf16', 'auto']).default('fp32'),
  /**
   * Global-norm clipping of the averaged gradient, applied where the optimizer runs (so the same on 1 or N
   * workers): a gradient whose L2 norm exceeds it is scaled down to it. 0: no clipping. Default 0.
   */
  clipNorm: z.number().min(0).default(0),
});
export type RunConfig = z.infer<typeof RunConfigSchema>;
export type RunConfigInput = z.input<typeof RunConfigSchema>;

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * `input` with the defaults that the schema cannot give by itself filled in, field by field: those that depend on the
 * backbone (backboneDefaults: preprocessing, phase 2's epochs, rate and what to unfreeze, label smoothing, the
 * schedule and warmup, augmentation) and each phase field left out of a partly given phase. Values given stay as they are.
 */
export function withBackboneDefaults<T extends Record<string, unknown>>(input: T): T {
  const backbone = isPlainObject(input.backbone) ? input.backbone : {};
  const d = backboneDefaults(typeof backbone.kind === 'string' ? backbone.kind : 'vgg16');
  const head = isPlainObject(input.headPhase) ? input.headPhase : {};
  const fine = isPlainObject(input.fineTunePhase) ? input.fineTunePhase : {};
  const given = isPlainObject(input.augmentation) ? Object.entries(input.augmentation).filter(([, v]) => v !== undefined) : [];
  return {
    ...input,
    preprocess: input.preprocess ?? d.preprocess,
    labelSmoothing: input.labelSmoothing ?? d.labelSmoothing,
    lrSchedule: input.lrSchedule ?? d.lrSchedule,
    warmupEpochs: input.warmupEpochs ?? d.warmupEpochs,
    // each range given replaces the default's; the others keep it
    augmentation: { ...d.augmentation, ...Object.fromEntries(given) },
    headPhase: { ...PHASE_DEFAULTS.headPhase, ...head },
    fineTunePhase: { epochs: d.fineTuneEpochs, learningRate: d.fineTuneLearningRate, ...(d.unfreeze ? { unfreeze: d.unfreeze } : {}), ...fine },
  };
}

/** Validates a run config, every default resolved (withBackboneDefaults, then the schema's); throws zod's error. See resolveRunConfig for a coded one. */
export function parseRunConfig(input: RunConfigInput): RunConfig {
  return RunConfigSchema.parse(withBackboneDefaults(input as Record<string, unknown>));
}
