import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import type { BackendInfo } from '../backend/types.js';
import type { PreprocessMode, RunConfig } from '../config.js';
import { isAugmenting, normalizeAugmentation } from '../data/augment.js';
import { loadDataset, type LoadDatasetOptions } from '../data/load.js';
import { ImageBatchLoader } from '../data/loader.js';
import type { Dataset, Sample } from '../data/types.js';
import { DptrainError } from '../errors.js';
import type { PhaseName } from '../events/types.js';
import { createBackbone, type Backbone } from '../models/backbone.js';
import { ancestorsInOrder, getLayer, originalOutput } from '../models/graph.js';
import { applyHead, createHead, type Head } from '../models/head.js';
import type { PhaseSplit } from '../models/phase-split.js';
import { saveTrainedModel } from '../models/trained-model.js';
import { FeatureCache, type FeatureCacheStats } from './feature-cache.js';
import { DeviceFeatureCache } from './device-feature-cache.js';
import { DEVICE_STEP_DEFAULTS, deviceStepDefault, type DeviceGradients, type DeviceStepReplica } from './device-step.js';
import { type BatchSource, FrozenFeatures, yieldToEventLoop } from './frozen-features.js';
import { checkedLabels, deviceGradients, GradientBuffers, type GradientStepContext, hostGradients } from './gradient-step.js';
import { buildPhaseModels, fineTuneSplit, type PhaseModels, selectTrainable } from './phase-graph.js';
import { TransferCounter } from './transfer-counter.js';
import type { GradientResult, Replica, StepContext, WeightSpec } from './types.js';

export type { BatchSource } from './frozen-features.js';

export interface ReplicaOptions {
  /**
   * The data set as read by this process (class names; local paths of samples by split+index).
   * Default: read from `dataDir` when it exists (else classes must come from config.classNames).
   */
  dataset?: Dataset;
  /** Data directory of this process's copy of the data (read when `dataset` is not given). Default config.dataDir. */
  dataDir?: string;
  /** The backend already resolved (recorded in `info`). Default: none. */
  backend?: BackendInfo;
  /** Folder where cached frozen features spill to disk. Default: none (memory only; evicted entries are recomputed). */
  cacheDir?: string;
  /** Share the cache folder with other processes: write each entry through to `cacheDir` at once. Default false. */
  cacheShared?: boolean;
  /** Memory bound of the feature cache in bytes. Default 512 MiB. */
  cacheMemoryBytes?: number;
  /** Store cached features as fp16. Default true. */
  cacheFp16?: boolean;
  /** Store cached features as bf16 instead of fp16 (see FeatureCacheOptions.bf16). Default false. */
  cacheBf16?: boolean;
  /** Force the feature cache on/off. Default: config.cacheFeatures && (no augmentation || config.cachedViews > 0). */
  cache?: boolean;
  /** Source of preprocessed images. Default: an ImageBatchLoader with the config's input size, preprocessing, augmentation and seed. */
  images?: BatchSource;
  /** Images per forward pass of the frozen part / predict (bounds memory; the event loop turns between chunks). Default 8. */
  chunkSize?: number;
  /** Warnings (random init, moved split point…). Default console.warn. */
  onWarning?: (message: string) => void;
  /**
   * Return gradients in this many flat buffers used in turn instead of a new array per step (fewer 30 MB
   * allocations: less GC work on other cores). A result is overwritten that many steps later, so the caller must
   * be done with it by then (the optimizer and a worker's send are). Default 0: a new array every step.
   */
  gradientBuffers?: number;
  /**
   * The GPU-resident step (device-step.ts): micro-batch gradients combined on the device with one read per step,
   * frozen features kept on the device up to `deviceCacheBytes`, pixels uploaded as bytes and preprocessed there,
   * asynchronous reads. Default: deviceStepDefault(backend) (on for tensorflow/tensorflow-gpu, off on CPU backends;
   * DPTRAIN_DEVICE_STEP=1/0 overrides).
   */
  deviceStep?: boolean;
  /** Bound of the device feature cache in bytes (the rest stays in the host cache). Default 1 GiB. */
  deviceCacheBytes?: number;
}

/** The trainable model of a run: backbone (frozen part + unfrozen block) + head, on one backend. */
export class ModelReplica implements Replica, DeviceStepReplica {
  spec: WeightSpec[] = [];
  /** Whether steps run on the device (see ReplicaOptions.deviceStep). */
  readonly deviceStep: boolean;
  /** Host↔device bytes moved by this replica (take() per step for a per-step figure). */
  readonly transfers = new TransferCounter();
  readonly baseHash: string;
  readonly classNames: string[];
  readonly numClasses: number;
  readonly inputSize: [number, number];
  readonly preprocess: PreprocessMode;
  /** Backbone + head as one model (input → probabilities); shares every weight with the phase models. */
  readonly model: tf.LayersModel;
  readonly cacheEnabled: boolean;
  private phaseName: PhaseName | undefined;
  private current: PhaseModels | undefined;
  private readonly phases = new Map<string, PhaseModels>();
  private readonly augmenting: boolean;
  private readonly cache: FeatureCache | undefined;
  private readonly chunk: number;
  private readonly trainedLayers = new Set<string>();
  private readonly gradients: GradientBuffers;
  private disposed = false;
  private guessWarned = false;
  private readonly deviceCache: DeviceFeatureCache | undefined;
  private readonly frozen: FrozenFeatures;

  constructor(
    readonly config: RunConfig,
    readonly backbone: Backbone,
    readonly head: Head,
    images: BatchSource,
    private readonly options: ReplicaOptions,
    classNames: string[],
    baseHash: string,
  ) {
    this.classNames = classNames;
    this.numClasses = classNames.length;
    this.inputSize = backbone.inputSize;
    this.preprocess = config.preprocess;
    this.baseHash = baseHash;
    this.chunk = Math.max(1, options.chunkSize ?? 8);
    const features = originalOutput(getLayer(backbone.model, backbone.cut));
    this.model = tf.model({ inputs: backbone.model.inputs, outputs: applyHead(head, features), name: 'dptrain_model' });
    this.augmenting = isAugmenting(normalizeAugmentation(config.augmentation));
    this.cacheEnabled = options.cache ?? (config.cacheFeatures && (!this.augmenting || config.cachedViews > 0));
    if (this.cacheEnabled) {
      const cacheOpts: ConstructorParameters<typeof FeatureCache>[0] = {
        namespace: JSON.stringify({
          baseHash,
          input: this.inputSize,
          preprocess: config.preprocess,
          dataset: options.dataset?.hash ?? null,
          augmentation: this.augmenting ? config.augmentation : null,
          seed: this.augmenting ? config.seed : null,
          views: this.augmenting ? config.cachedViews : null,
          // bf16 features differ from fp32 ones (fp32 runs keep their old folder)
          ...(config.precision === 'bf16' ? { precision: 'bf16' } : {}),
        }),
      };
      if (options.cacheDir !== undefined) cacheOpts.dir = options.cacheDir;
      if (options.cacheShared) cacheOpts.writeThrough = true;
      if (options.cacheMemoryBytes !== undefined) cacheOpts.maxMemoryBytes = options.cacheMemoryBytes;
      if (options.cacheFp16 !== undefined) cacheOpts.fp16 = options.cacheFp16;
      if (options.cacheBf16 !== undefined) cacheOpts.bf16 = options.cacheBf16;
      this.cache = new FeatureCache(cacheOpts);
    }
    this.deviceStep = options.deviceStep ?? deviceStepDefault(options.backend);
    if (this.deviceStep && this.cacheEnabled) this.deviceCache = new DeviceFeatureCache(options.deviceCacheBytes ?? DEVICE_STEP_DEFAULTS.deviceCacheBytes);
    this.gradients = new GradientBuffers(options.gradientBuffers ?? 0);
    this.frozen = new FrozenFeatures({
      config,
      backbone,
      images,
      augmenting: this.augmenting,
      chunk: this.chunk,
      transfers: this.transfers,
      cache: this.cache,
      deviceCache: this.deviceCache,
      local: (sample) => this.local(sample),
    });
  }

  /** The device feature cache's use: entries, bytes, entries refused by the bound (undefined when off). */
  get deviceCacheStats(): { entries: number; bytes: number; refused: number } | undefined {
    const c = this.deviceCache;
    return c ? { entries: c.size, bytes: c.bytes, refused: c.refused } : undefined;
  }

  /** The current phase's split (boundary layer and unfrozen layers). */
  get split(): PhaseSplit | undefined {
    return this.current?.split;
  }

  get phase(): PhaseName | undefined {
    return this.phaseName;
  }

  get cacheStats(): FeatureCacheStats | undefined {
    return this.cache?.stats;
  }

  /** Number of trainable parameters of the current phase. */
  get trainableParams(): number {
    return this.spec.reduce((a, s) => a + s.size, 0);
  }

  private models(): PhaseModels {
    if (!this.current) throw new DptrainError('E_CONFIG', 'replica: call setPhase() first');
    return this.current;
  }

  async setPhase(phase: PhaseName): Promise<void> {
    this.assertLive();
    const split: PhaseSplit =
      phase === 'head' ? { boundary: this.backbone.cut, trainableLayers: [] } : fineTuneSplit(this.config, this.backbone, (m) => this.warnGuessOnce(m));
    if (split.warning) this.warn(split.warning);
    let pm = this.phases.get(split.boundary);
    if (!pm) {
      let next: PhaseSplit | undefined;
      if (phase === 'head' && this.cacheEnabled && this.config.fineTunePhase.epochs > 0) {
        try {
          next = fineTuneSplit(this.config, this.backbone);
        } catch {
          next = undefined; // reported when phase 2 starts
        }
      }
      pm = buildPhaseModels(this.model, this.backbone, split, next);
      this.phases.set(split.boundary, pm);
    }
    // Trainable flags: the tail layers train, everything else is frozen.
    selectTrainable(this.model, this.head, pm);
    // Features at this boundary are stale when layers below it were trained in an earlier phase.
    const below = new Set(ancestorsInOrder(this.backbone.model, split.boundary).map((l) => l.name));
    if ([...this.trainedLayers].some((n) => below.has(n))) this.frozen.invalidate();
    for (const n of split.trainableLayers) this.trainedLayers.add(n);
    this.current = pm;
    this.phaseName = phase;
    this.spec = pm.spec;
  }

  /** Warns once per replica that phase 2 unfreezes a guessed default (see chooseUnfreeze). */
  private warnGuessOnce(message: string): void {
    if (!this.guessWarned) this.warn(message);
    this.guessWarned = true;
  }

  getWeights(): Float32Array {
    const { vars, spec } = this.models();
    const out = new Float32Array(spec.reduce((a, s) => a + s.size, 0));
    let off = 0;
    vars.forEach((v, i) => {
      out.set(v.dataSync() as Float32Array, off);
      off += spec[i]!.size;
    });
    return out;
  }

  setWeights(flat: Float32Array): void {
    const { vars, spec } = this.models();
    const total = spec.reduce((a, s) => a + s.size, 0);
    if (flat.length !== total) {
      throw new DptrainError('E_GRADIENT_SHAPE', `setWeights: got ${flat.length} values, the ${this.phaseName} phase has ${total} trainable weights`);
    }
    let off = 0;
    vars.forEach((v, i) => {
      const s = spec[i]!;
      tf.tidy(() => v.assign(tf.tensor(flat.subarray(off, off + s.size), s.shape)));
      off += s.size;
    });
  }

  /** The current phase's gradient-step context (gradient-step.ts). */
  private stepContext(): GradientStepContext {
    return { pm: this.models(), head: this.head, config: this.config, numClasses: this.numClasses, transfers: this.transfers };
  }

  async computeGradients(samples: Sample[], ctx: StepContext): Promise<GradientResult> {
    this.assertLive();
    const pm = this.models();
    const total = pm.spec.reduce((a, s) => a + s.size, 0);
    const n = samples.length;
    if (n === 0) return { gradients: new Float32Array(total), loss: 0, count: 0, correct: 0 };
    const labels = checkedLabels(samples, this.numClasses);
    const feats = await this.frozen.host(pm, samples, { train: true, epoch: ctx.epoch });
    const gradients = this.gradients.next(total);
    const { loss, correct } = hostGradients(this.stepContext(), feats, labels, samples, ctx, gradients);
    return { gradients, loss, count: n, correct };
  }

  /** computeGradients with everything left on the device (the device step); the caller disposes the tensors. */
  async computeGradientTensors(samples: Sample[], ctx: StepContext): Promise<DeviceGradients> {
    this.assertLive();
    const pm = this.models();
    const total = pm.spec.reduce((a, s) => a + s.size, 0);
    const n = samples.length;
    if (n === 0) return { gradients: tf.zeros([total]), loss: tf.scalar(0), correct: tf.scalar(0), count: 0 };
    const labels = checkedLabels(samples, this.numClasses);
    const x = await this.frozen.device(pm, samples, { train: true, epoch: ctx.epoch });
    const out = deviceGradients(this.stepContext(), x, labels, samples, ctx);
    x.dispose();
    return { ...out, count: n };
  }

  async predict(samples: Sample[]): Promise<Float32Array> {
    this.assertLive();
    const out = await this.predictView(samples, false);
    if (this.config.tta === 'flip') {
      // test-time augmentation: the mean of the image's and its mirror image's class probabilities
      const mirrored = await this.predictView(samples, true);
      for (let i = 0; i < out.length; i++) out[i] = 0.5 * (out[i]! + mirrored[i]!);
    }
    return out;
  }

  /** Class probabilities of the samples (or of their mirror images), [n, C] row-major. */
  private async predictView(samples: Sample[], flip: boolean): Promise<Float32Array> {
    const pm = this.models();
    const out = new Float32Array(samples.length * this.numClasses);
    // Features for a few chunks at a time (so decoding overlaps the frozen forward), the head per chunk.
    const group = this.chunk * 4;
    for (let g = 0; g < samples.length; g += group) {
      const part = samples.slice(g, g + group);
      if (this.deviceStep) {
        await this.predictOnDevice(part, flip, out, g);
        continue;
      }
      const feats = await this.frozen.host(pm, part, { train: false, epoch: 0, flip });
      const per = feats.data.length / part.length;
      for (let i = 0; i < part.length; i += this.chunk) {
        const n = Math.min(this.chunk, part.length - i);
        await yieldToEventLoop();
        tf.tidy(() => {
          const x = tf.tensor(feats.data.subarray(i * per, (i + n) * per), [n, ...feats.shape.slice(1)]);
          const h = pm.tail.apply(x, { training: false }) as tf.Tensor;
          const probs = tf.softmax(this.head.logits.apply(h) as tf.Tensor2D);
          this.transfers.up(x.size * 4);
          out.set(probs.dataSync() as Float32Array, (g + i) * this.numClasses);
          this.transfers.down(probs.size * 4);
        });
      }
    }
    return out;
  }

  /** Probabilities of `part` into `out` at row `at`, features and head on the device, one async read per chunk. */
  private async predictOnDevice(part: Sample[], flip: boolean, out: Float32Array, at: number): Promise<void> {
    const pm = this.models();
    const feats = await this.frozen.device(pm, part, { train: false, epoch: 0, flip });
    try {
      for (let i = 0; i < part.length; i += this.chunk) {
        const n = Math.min(this.chunk, part.length - i);
        const probs = tf.tidy(() => {
          const x = feats.slice(i, n);
          const h = pm.tail.apply(x, { training: false }) as tf.Tensor;
          return tf.softmax(this.head.logits.apply(h) as tf.Tensor2D);
        });
        out.set((await probs.data()) as Float32Array, (at + i) * this.numClasses);
        this.transfers.down(probs.size * 4);
        probs.dispose();
      }
    } finally {
      feats.dispose();
    }
  }

  /** Save backbone + head as one tfjs layers model with class names, preprocessing and input size in the metadata. */
  async save(dir: string): Promise<void> {
    await saveTrainedModel(dir, {
      model: this.model,
      classNames: this.classNames,
      preprocess: this.preprocess,
      inputSize: this.inputSize,
      backbone: this.config.backbone.kind === 'layers' ? (this.config.backbone.path ?? 'layers') : this.config.backbone.kind,
      cut: this.backbone.cut,
      tta: this.config.tta,
    });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.cache?.clearMemory();
    this.deviceCache?.clear();
    // Layers are shared by the full model and the phase sub-models (each use adds a reference): release them all.
    const layers = new Set([...this.backbone.model.layers, ...this.model.layers]);
    for (const layer of layers) {
      try {
        while (layer.dispose().refCountAfterDispose > 0);
      } catch {
        // never built/used, or already released
      }
    }
  }

  private assertLive(): void {
    if (this.disposed) throw new DptrainError('E_CONFIG', 'replica was disposed');
  }

  private warn(message: string): void {
    (this.options.onWarning ?? ((m: string) => console.warn(`dptrain: ${m}`)))(message);
  }

  /** This process's copy of a sample (paths from the local data set when it has the same sample). */
  private local(s: Sample): Sample {
    const ds = this.options.dataset;
    if (!ds) return s;
    const mine = (s.split === 'test' ? ds.test : ds.labelled)[s.index];
    return mine && mine.name === s.name ? mine : s;
  }
}

/** Hash of the backbone's weights up to the cut (trainable and not), in layer order. */
export function hashBackboneWeights(backbone: Backbone): string {
  const h = createHash('sha256');
  for (const layer of ancestorsInOrder(backbone.model, backbone.cut)) {
    for (const w of layer.weights) {
      h.update(`${layer.name}/${w.originalName ?? w.name}[${w.shape.join(',')}]`);
      const v = w.read().dataSync() as Float32Array;
      h.update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
    }
  }
  return h.digest('hex');
}

/**
 * Build the replica of a run: backbone (with its weights), head (seeded), feature cache, phase 'head' selected.
 */
export async function createReplica(config: RunConfig, options: ReplicaOptions = {}): Promise<ModelReplica> {
  const warn = options.onWarning ?? ((m: string) => console.warn(`dptrain: ${m}`));
  const dataDir = options.dataDir ?? config.dataDir;
  if (!options.dataset && (!config.classNames || fs.existsSync(dataDir))) {
    const loadOpts: LoadDatasetOptions = config.classNames ? { classNames: config.classNames } : {};
    options = { ...options, dataset: loadDataset(dataDir, loadOpts) };
  }
  const classNames = config.classNames ?? options.dataset?.classNames;
  if (!classNames || classNames.length < 2) {
    throw new DptrainError('E_CONFIG', `createReplica: need at least 2 classes (from config.classNames or the data set), got ${classNames?.length ?? 0}`);
  }
  const backbone = await createBackbone(config.backbone, { seed: config.seed, onWarning: warn });
  const head = createHead({ spec: config.head, numClasses: classNames.length, seed: config.seed });
  const baseHash = hashBackboneWeights(backbone);
  const images =
    options.images ??
    new ImageBatchLoader({
      inputSize: backbone.inputSize,
      preprocess: config.preprocess,
      augmentation: config.augmentation,
      seed: config.seed,
      ...(options.dataset?.imagesRoot !== undefined ? { imagesRoot: options.dataset.imagesRoot } : {}),
      maxImageBytes: config.maxImageBytes,
    });
  const replica = new ModelReplica(config, backbone, head, images, { ...options, onWarning: warn }, classNames, baseHash);
  await replica.setPhase('head');
  return replica;
}
