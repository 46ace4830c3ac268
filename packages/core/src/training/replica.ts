import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import type { BackendInfo } from '../backend/types.js';
import { readTensorInto } from '../backend/read-into.js';
import type { PreprocessMode, RunConfig } from '../config.js';
import { isAugmenting, normalizeAugmentation } from '../data/augment.js';
import { augmentViewFor } from '../data/augment-views.js';
import { loadDataset, type LoadDatasetOptions } from '../data/load.js';
import { ImageBatchLoader, type LoadBatchOptions } from '../data/loader.js';
import type { Dataset, Sample } from '../data/types.js';
import { DptrainError } from '../errors.js';
import type { PhaseName } from '../events/types.js';
import { createBackbone, type Backbone } from '../models/backbone.js';
import { ancestorsInOrder, buildHeadless, buildTail, getLayer, originalOutput } from '../models/graph.js';
import { HEAD_LAYERS, applyHead, createHead, dropoutMask, type Head } from '../models/head.js';
import { guessUnfreezeBlock, hasPrefix, resolveSplit, splitWeights, type PhaseSplit } from '../models/split.js';
import { saveTrainedModel } from '../models/trained-model.js';
import { FeatureCache, featureKey, type FeatureCacheStats } from './feature-cache.js';
import { DeviceFeatureCache } from './device-feature-cache.js';
import { packBytes, preprocessOnDevice, unpackBytes } from './device-preprocess.js';
import { DEVICE_STEP_DEFAULTS, deviceStepDefault, type DeviceGradients, type DeviceStepReplica } from './device-step.js';
import { TransferCounter } from './transfer-counter.js';
import type { GradientResult, Replica, StepContext, WeightSpec } from './types.js';

/** Where a replica gets preprocessed pixels from (the data pipeline's ImageBatchLoader fits). */
export interface BatchSource {
  loadBatch(samples: readonly Sample[], options?: LoadBatchOptions): Promise<{ data: Float32Array; shape: readonly number[] }>;
  /** RGB bytes, not augmented or preprocessed (the device step preprocesses on the device). Default: absent (floats are uploaded). */
  loadRawBatch?(samples: readonly Sample[]): Promise<{ data: Uint8Array; shape: readonly number[] }>;
}

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

interface PhaseModels {
  split: PhaseSplit;
  frozen: tf.LayersModel;
  /**
   * Head phase with caching: the phase-2 boundary, whose output the frozen pass also stores so that phase 2 never
   * runs the frozen part again (VGG16: block4_pool, taken on the way to block5_pool).
   */
  secondary?: { boundary: string; frozen: tf.LayersModel };
  tail: tf.LayersModel;
  vars: tf.Variable[];
  spec: WeightSpec[];
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
  private generation = 0;
  private readonly gradRing: Float32Array[] = [];
  private gradTurn = 0;
  private disposed = false;
  private guessWarned = false;
  private readonly deviceCache: DeviceFeatureCache | undefined;

  constructor(
    readonly config: RunConfig,
    readonly backbone: Backbone,
    readonly head: Head,
    private readonly images: BatchSource,
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
    const split =
      phase === 'head' ? { boundary: this.backbone.cut, trainableLayers: [] } : resolveSplit(this.backbone.model, this.backbone.cut, this.unfreezeTarget(true));
    if (split.warning) this.warn(split.warning);
    let pm = this.phases.get(split.boundary);
    if (!pm) {
      const frozen = buildHeadless(this.backbone.model, split.boundary, `frozen_${split.boundary}`);
      const tail = buildTail(this.model, split.boundary, HEAD_LAYERS.dense, `trainable_${split.boundary}`);
      pm = { split, frozen, tail, vars: [], spec: [] };
      if (phase === 'head' && this.cacheEnabled && this.config.fineTunePhase.epochs > 0) {
        let next: PhaseSplit | undefined;
        try {
          next = resolveSplit(this.backbone.model, this.backbone.cut, this.unfreezeTarget(false));
        } catch {
          next = undefined; // reported when phase 2 starts
        }
        if (next && next.boundary !== split.boundary) {
          const outs = [split.boundary, next.boundary].map((n) => originalOutput(getLayer(this.backbone.model, n)));
          pm.secondary = {
            boundary: next.boundary,
            frozen: tf.model({ inputs: this.backbone.model.inputs, outputs: outs, name: `frozen_${split.boundary}_${next.boundary}` }),
          };
        }
      }
      this.phases.set(split.boundary, pm);
    }
    // Trainable flags: the tail layers train, everything else is frozen.
    const trainable = new Set([...pm.tail.layers.map((l) => l.name), HEAD_LAYERS.logits]);
    for (const l of this.model.layers) l.trainable = trainable.has(l.name);
    const lvars = [...pm.tail.trainableWeights, ...this.head.logits.trainableWeights];
    pm.vars = lvars.map((v) => v.read() as tf.Variable);
    pm.spec = lvars.map((v) => {
      const shape = v.shape as number[];
      return { name: v.originalName ?? v.name, shape: [...shape], size: shape.reduce((a, b) => a * b, 1) };
    });
    // Features at this boundary are stale when layers below it were trained in an earlier phase.
    const below = new Set(ancestorsInOrder(this.backbone.model, split.boundary).map((l) => l.name));
    if ([...this.trainedLayers].some((n) => below.has(n))) {
      this.generation++;
      this.deviceCache?.clear(); // stale rows: features below trained layers change
    }
    for (const n of split.trainableLayers) this.trainedLayers.add(n);
    this.current = pm;
    this.phaseName = phase;
    this.spec = pm.spec;
  }

  /**
   * What phase 2 unfreezes: config.fineTunePhase.unfreeze. A generic backbone (kind 'layers') with none set, or
   * with the VGG default 'block5' that it lacks, gets guessUnfreezeBlock's default instead (the last 3 numbered
   * blocks, else the top half of its weights cut at a merge point), with a warning that says what trains.
   */
  private unfreezeTarget(warn: boolean): string {
    const wanted = this.config.fineTunePhase.unfreeze;
    const generic = this.config.backbone.kind === 'layers';
    if (!generic || (wanted !== undefined && (wanted !== 'block5' || hasPrefix(this.backbone.model, this.backbone.cut, wanted)))) return wanted ?? 'block5';
    const guess = guessUnfreezeBlock(this.backbone.model, this.backbone.cut);
    if (warn && !this.guessWarned) {
      const split = resolveSplit(this.backbone.model, this.backbone.cut, guess);
      const { trainable, total } = splitWeights(this.backbone.model, this.backbone.cut, split);
      const why = wanted === undefined ? 'no --unfreeze given' : "the backbone has no 'block5' layers";
      this.warn(
        `${why}; phase 2 unfreezes '${guess}' instead: the layers after ${split.boundary} up to ${this.backbone.cut}, ` +
          `${trainable} of ${total} backbone weights (set fineTunePhase.unfreeze / --unfreeze to choose)`,
      );
    }
    if (warn) this.guessWarned = true;
    return guess;
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

  async computeGradients(samples: Sample[], ctx: StepContext): Promise<GradientResult> {
    this.assertLive();
    const pm = this.models();
    const total = pm.spec.reduce((a, s) => a + s.size, 0);
    const n = samples.length;
    if (n === 0) return { gradients: new Float32Array(total), loss: 0, count: 0, correct: 0 };
    const labels = this.checkedLabels(samples);
    const feats = await this.features(samples, { train: true, epoch: ctx.epoch });
    const gradients = this.gradientBuffer(total);
    let loss = 0;
    let correct = 0;
    tf.tidy(() => {
      const x = tf.tensor(feats.data, feats.shape);
      this.transfers.up(feats.data.byteLength);
      const { value, grads, logits } = this.lossAndGradients(x, labels, samples, ctx);
      loss = value.dataSync()[0]!;
      this.transfers.down(4);
      let off = 0;
      pm.vars.forEach((v, i) => {
        const g = grads[v.name];
        const size = pm.spec[i]!.size;
        if (g)
          readTensorInto(g, gradients, off); // not dataSync: keeps the native backend's arrays recyclable
        else gradients.fill(0, off, off + size);
        if (g) this.transfers.down(size * 4);
        off += size;
      });
      const pred = logits.argMax(1).dataSync();
      this.transfers.down(n * 4);
      for (let i = 0; i < n; i++) if (pred[i] === labels[i]) correct++;
      logits.dispose();
    });
    return { gradients, loss, count: n, correct };
  }

  /**
   * Loss and trainable gradients of the current phase for features `x` (call inside tf.tidy). `logits` is kept out
   * of the tidy: the caller disposes it.
   */
  private lossAndGradients(
    x: tf.Tensor,
    labels: number[],
    samples: Sample[],
    ctx: StepContext,
  ): { value: tf.Scalar; grads: tf.NamedTensorMap; logits: tf.Tensor2D } {
    const pm = this.models();
    const n = samples.length;
    const rate = this.head.spec.dropout;
    const units = this.head.spec.units;
    const smoothing = this.config.labelSmoothing;
    const hard = tf.oneHot(tf.tensor1d(labels, 'int32'), this.numClasses).toFloat();
    // Keras label smoothing: y·(1-ε) + ε/C
    const onehot = smoothing > 0 ? hard.mul(1 - smoothing).add(smoothing / this.numClasses) : hard;
    const cw = this.config.classWeight;
    const sampleWeights = Array.isArray(cw) ? tf.tensor1d(labels.map((y) => cw[y] ?? 1)) : undefined;
    const mask = rate > 0 ? tf.tensor2d(dropoutMask(rate, units, this.config.seed, ctx.step, samples), [n, units]) : undefined;
    this.transfers.up(n * 4 + (mask ? n * units * 4 : 0) + (sampleWeights ? n * 4 : 0));
    let logitsKept: tf.Tensor2D | undefined;
    const { value, grads } = tf.variableGrads(() => {
      const h = pm.tail.apply(x, { training: false }) as tf.Tensor;
      const logits = this.head.logits.apply(mask ? h.mul(mask) : h) as tf.Tensor2D;
      logitsKept = tf.keep(logits);
      if (!sampleWeights) return tf.neg(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)))).div(n) as tf.Scalar;
      // Keras class_weight: each sample's loss times its class's weight, still divided by the sample count
      const perSample = tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), 1);
      return tf.neg(tf.sum(tf.mul(perSample, sampleWeights))).div(n) as tf.Scalar;
    }, pm.vars);
    return { value, grads, logits: logitsKept! };
  }

  private checkedLabels(samples: Sample[]): number[] {
    return samples.map((s) => {
      if (!Number.isInteger(s.label) || s.label < 0 || s.label >= this.numClasses) {
        throw new DptrainError('E_DATA_INVALID', `sample ${s.name} (${s.path}) has label ${s.label}, expected 0..${this.numClasses - 1}`);
      }
      return s.label;
    });
  }

  /** computeGradients with everything left on the device (the device step); the caller disposes the tensors. */
  async computeGradientTensors(samples: Sample[], ctx: StepContext): Promise<DeviceGradients> {
    this.assertLive();
    const pm = this.models();
    const total = pm.spec.reduce((a, s) => a + s.size, 0);
    const n = samples.length;
    if (n === 0) return { gradients: tf.zeros([total]), loss: tf.scalar(0), correct: tf.scalar(0), count: 0 };
    const labels = this.checkedLabels(samples);
    const x = await this.featuresTensor(samples, { train: true, epoch: ctx.epoch });
    const out = tf.tidy(() => {
      const { value, grads, logits } = this.lossAndGradients(x, labels, samples, ctx);
      const flat = tf.concat(pm.vars.map((v, i) => grads[v.name]?.reshape([-1]) ?? tf.zeros([pm.spec[i]!.size])));
      const correct = tf.sum(tf.equal(tf.argMax(logits, 1), tf.tensor1d(labels, 'int32')).toFloat());
      this.transfers.up(n * 4);
      logits.dispose();
      return { gradients: flat as tf.Tensor1D, loss: value, correct: correct as tf.Scalar };
    });
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
      const feats = await this.features(part, { train: false, epoch: 0, flip });
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
    const feats = await this.featuresTensor(part, { train: false, epoch: 0, flip });
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

  /** A flat gradient array: the next of `gradientBuffers` reused buffers (not cleared), or a new one. */
  private gradientBuffer(total: number): Float32Array {
    const ring = this.options.gradientBuffers ?? 0;
    if (ring <= 0) return new Float32Array(total);
    const i = this.gradTurn++ % ring;
    let buf = this.gradRing[i];
    if (!buf || buf.length !== total) {
      buf = new Float32Array(total);
      this.gradRing[i] = buf;
    }
    return buf; // computeGradients writes every segment (zeros for variables without a gradient)
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

  /**
   * Per sample: the epoch its augmentation is drawn for and the name of its cached view. Training with augmentation
   * and K cached views reads the view `augmentViewFor` picks for (seed, epoch, sample), else (uncached) the epoch's
   * own augmentation; evaluation reads the plain or (`flip`) the mirror image.
   */
  private featureViews(
    samples: Sample[],
    mode: { train: boolean; epoch: number; flip?: boolean },
  ): { augment: boolean; useCache: boolean; augEpochs: number[]; views: string[] } {
    const augment = mode.train && this.augmenting;
    const k = this.config.cachedViews;
    const useCache = this.cache !== undefined && (!augment || k > 0);
    const augEpochs = samples.map((s) => (augment && k > 0 ? augmentViewFor(this.config.seed, mode.epoch, s.index, k) : mode.epoch));
    const views = augEpochs.map((e) => `${augment ? `v${e}` : mode.flip ? 'flip' : 'plain'}.g${this.generation}`);
    return { augment, useCache, augEpochs, views };
  }

  /**
   * Output of the frozen part for these samples, [n, ...boundary shape], from the cache when possible.
   * `flip`: of the mirror images (test-time augmentation; cached as their own view).
   */
  private async features(samples: Sample[], mode: { train: boolean; epoch: number; flip?: boolean }): Promise<{ data: Float32Array; shape: number[] }> {
    const pm = this.models();
    const fshape = originalOutput(getLayer(this.backbone.model, pm.split.boundary)).shape.slice(1) as number[];
    const size = fshape.reduce((a, b) => a * b, 1);
    const shape = [samples.length, ...fshape];
    const { augment, useCache, augEpochs, views } = this.featureViews(samples, mode);
    const data = new Float32Array(samples.length * size);
    const missing: number[] = [];
    const keys = samples.map((s, i) => featureKey(pm.split.boundary, s, views[i]!));
    const secondary = useCache ? pm.secondary : undefined;
    const secondSize = secondary
      ? (originalOutput(getLayer(this.backbone.model, secondary.boundary)).shape.slice(1) as number[]).reduce((a, b) => a * b, 1)
      : 0;
    if (useCache) {
      keys.forEach((k, i) => {
        const v = this.cache!.get(k);
        if (v) data.set(v, i * size);
        else missing.push(i);
      });
    } else {
      for (let i = 0; i < samples.length; i++) missing.push(i);
    }
    // Decode chunk k+1 (sharp, off the main thread) while the frozen part runs on chunk k.
    const load = (c: number) => {
      const idx = missing.slice(c, c + this.chunk);
      const p = this.images.loadBatch(
        idx.map((i) => this.local(samples[i]!)),
        { augment, epochs: idx.map((i) => augEpochs[i]!) },
      );
      p.catch(() => undefined);
      return p;
    };
    let next = missing.length > 0 ? load(0) : undefined;
    for (let c = 0; c < missing.length; c += this.chunk) {
      // Let the event loop turn between chunks: an already-settled decode only yields to microtasks, and a
      // worker's heartbeat timer must fire during long frozen passes or the coordinator declares it lost.
      await yieldToEventLoop();
      const idx = missing.slice(c, c + this.chunk);
      const batch = await next!;
      next = c + this.chunk < missing.length ? load(c + this.chunk) : undefined;
      // tidy returns the tensors, not their arrays: tidy walks what it returns, and walking a Float32Array visits
      // every element (~100 ms per VGG16 batch of 8).
      const outs = tf.tidy(() => {
        const pixels = tf.tensor(batch.data, [idx.length, ...batch.shape.slice(1)]);
        this.transfers.up(batch.data.byteLength);
        const x = mode.flip ? tf.reverse(pixels, 2) : pixels; // NHWC: axis 2 is the width
        return secondary ? (secondary.frozen.predict(x) as tf.Tensor[]) : [pm.frozen.predict(x) as tf.Tensor];
      });
      const [out, second] = outs.map((t) => {
        const a = new Float32Array(t.size);
        readTensorInto(t, a);
        this.transfers.down(a.byteLength);
        t.dispose();
        return a;
      });
      if (!out) throw new DptrainError('E_CONFIG', `the frozen part gave no output for ${pm.split.boundary}`);
      idx.forEach((i, j) => {
        const row = out.subarray(j * size, (j + 1) * size);
        data.set(useCache ? this.cache!.put(keys[i]!, row) : row, i * size);
        if (secondary && second) this.cache!.put(featureKey(secondary.boundary, samples[i]!, views[i]!), second.subarray(j * secondSize, (j + 1) * secondSize));
      });
    }
    return { data, shape };
  }

  /**
   * features() for the device step: the same values as a tensor [n, ...boundary shape] left on the device. Rows
   * come from the device cache, else the host cache (uploaded), else a frozen pass on the device from pixels
   * uploaded as bytes (floats when augmenting); new rows are kept on the device while the bound allows, else
   * read back into the host cache.
   */
  private async featuresTensor(samples: Sample[], mode: { train: boolean; epoch: number; flip?: boolean }): Promise<tf.Tensor> {
    const pm = this.models();
    const fshape = originalOutput(getLayer(this.backbone.model, pm.split.boundary)).shape.slice(1) as number[];
    const { augment, useCache, augEpochs, views } = this.featureViews(samples, mode);
    const keys = samples.map((s, i) => featureKey(pm.split.boundary, s, views[i]!));
    const secondary = useCache ? pm.secondary : undefined;
    const rows: tf.Tensor[] = new Array(samples.length);
    const temporary: tf.Tensor[] = [];
    const keep = (key: string, row: tf.Tensor, cache: boolean): void => {
      if (cache && this.deviceCache?.put(key, row)) return;
      if (cache) {
        const a = new Float32Array(row.size);
        readTensorInto(row, a);
        this.transfers.down(a.byteLength);
        this.cache!.put(key, a);
      }
      temporary.push(row);
    };
    const missing: number[] = [];
    samples.forEach((_, i) => {
      const onDevice = useCache ? this.deviceCache?.get(keys[i]!) : undefined;
      if (onDevice) return void (rows[i] = onDevice);
      const onHost = useCache ? this.cache!.get(keys[i]!) : undefined;
      if (!onHost) return void missing.push(i);
      rows[i] = tf.tensor(onHost, fshape);
      this.transfers.up(onHost.byteLength);
      temporary.push(rows[i]!);
    });
    const load = (c: number) => {
      const idx = missing.slice(c, c + this.chunk);
      const p = this.pixelsOnDevice(
        idx.map((i) => this.local(samples[i]!)),
        augment,
        idx.map((i) => augEpochs[i]!),
        mode.flip === true,
      );
      p.catch(() => undefined);
      return p;
    };
    let next = missing.length > 0 ? load(0) : undefined;
    for (let c = 0; c < missing.length; c += this.chunk) {
      await yieldToEventLoop();
      const idx = missing.slice(c, c + this.chunk);
      const x = await next!;
      next = c + this.chunk < missing.length ? load(c + this.chunk) : undefined;
      const outs = tf.tidy(() => (secondary ? (secondary.frozen.predict(x) as tf.Tensor[]) : [pm.frozen.predict(x) as tf.Tensor]));
      x.dispose();
      const [out, second] = outs;
      idx.forEach((i, j) => {
        const row = tf.tidy(() => out!.slice(j, 1).reshape(fshape));
        rows[i] = row;
        keep(keys[i]!, row, useCache);
        if (secondary && second) {
          const key2 = featureKey(secondary.boundary, samples[i]!, views[i]!);
          const row2 = tf.tidy(() => second.slice(j, 1).reshape(second.shape.slice(1)));
          keep(key2, row2, true);
        }
      });
      for (const t of outs) t.dispose();
    }
    const stacked = tf.stack(rows);
    for (const t of temporary) t.dispose();
    return stacked;
  }

  /** A batch of pixels as a preprocessed tensor on the device: bytes up and preprocessed there, or floats when augmenting. */
  private async pixelsOnDevice(samples: Sample[], augment: boolean, epochs: readonly number[], flip: boolean): Promise<tf.Tensor4D> {
    const raw = !augment && this.images.loadRawBatch ? await this.images.loadRawBatch(samples) : undefined;
    let x: tf.Tensor4D;
    if (raw) {
      const packed = packBytes(raw.data);
      this.transfers.up(packed.byteLength);
      x = tf.tidy(() =>
        preprocessOnDevice(unpackBytes(tf.tensor1d(packed, 'int32'), raw.data.length).reshape(raw.shape as number[]) as tf.Tensor4D, this.preprocess),
      );
    } else {
      const batch = await this.images.loadBatch(samples, { augment, epochs });
      this.transfers.up(batch.data.byteLength);
      x = tf.tensor4d(batch.data, [samples.length, batch.shape[1]!, batch.shape[2]!, batch.shape[3]!]);
    }
    if (!flip) return x;
    const mirrored = tf.reverse(x, 2) as tf.Tensor4D; // NHWC: axis 2 is the width
    x.dispose();
    return mirrored;
  }
}

/** Resolves on the next turn of the event loop (after timers and I/O that are due). */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
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
