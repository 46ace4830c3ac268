import * as tf from '@tensorflow/tfjs';
import { readTensorInto } from '../backend/read-into.js';
import type { RunConfig } from '../config.js';
import { augmentViewFor } from '../data/augment-views.js';
import type { LoadBatchOptions } from '../data/loader.js';
import type { Sample } from '../data/types.js';
import { DptrainError } from '../errors.js';
import type { Backbone } from '../models/backbone.js';
import type { DeviceFeatureCache } from './device-feature-cache.js';
import { packBytes, preprocessOnDevice, unpackBytes } from './device-preprocess.js';
import { type FeatureCache, featureKey } from './feature-cache.js';
import { boundaryShape, type PhaseModels } from './phase-graph.js';
import type { TransferCounter } from './transfer-counter.js';

/** Where a replica gets preprocessed pixels from (the data pipeline's ImageBatchLoader fits). */
export interface BatchSource {
  loadBatch(samples: readonly Sample[], options?: LoadBatchOptions): Promise<{ data: Float32Array; shape: readonly number[] }>;
  /** RGB bytes, not augmented or preprocessed (the device step preprocesses on the device). Default: absent (floats are uploaded). */
  loadRawBatch?(samples: readonly Sample[]): Promise<{ data: Uint8Array; shape: readonly number[] }>;
}

/** Which features: of a training step (augmented view of `epoch` when augmenting) or plain/mirrored for evaluation. */
export interface FeatureMode {
  train: boolean;
  epoch: number;
  flip?: boolean;
}

/** What the frozen pass works with (all owned by the replica). */
export interface FrozenFeaturesOptions {
  config: RunConfig;
  backbone: Backbone;
  images: BatchSource;
  /** Whether the run's augmentation changes pixels. */
  augmenting: boolean;
  /** Images per forward pass of the frozen part. */
  chunk: number;
  transfers: TransferCounter;
  /** The host feature cache, when on. */
  cache: FeatureCache | undefined;
  /** The device feature cache (device step with caching), when on. */
  deviceCache: DeviceFeatureCache | undefined;
  /** This process's copy of a sample. */
  local: (sample: Sample) => Sample;
}

/**
 * The frozen part's outputs (features at a phase's boundary) for a batch of samples: from the feature caches when
 * they hold them, else from decoded pixels through the frozen model, chunk by chunk, decoding the next chunk while
 * the current one runs. `generation` goes up when layers below a boundary were trained (cached rows are stale).
 */
export class FrozenFeatures {
  generation = 0;
  constructor(private readonly o: FrozenFeaturesOptions) {}

  /** Marks every cached feature stale (layers below a boundary changed). */
  invalidate(): void {
    this.generation++;
    this.o.deviceCache?.clear();
  }

  /**
   * Where the features of a batch come from: the boundary's shape, each sample's augmentation draw and cached view
   * (with K cached views, the view `augmentViewFor` picks for (seed, epoch, sample); uncached, the epoch's own
   * draw), whether the caches are used, the cache key of each sample, and the phase-2 boundary filled on the way.
   */
  private lookup(pm: PhaseModels, samples: Sample[], mode: FeatureMode) {
    const fshape = boundaryShape(this.o.backbone, pm.split.boundary);
    const augment = mode.train && this.o.augmenting;
    const k = this.o.config.cachedViews;
    const useCache = this.o.cache !== undefined && (!augment || k > 0);
    const augEpochs = samples.map((s) => (augment && k > 0 ? augmentViewFor(this.o.config.seed, mode.epoch, s.index, k) : mode.epoch));
    const views = augEpochs.map((e) => `${augment ? `v${e}` : mode.flip ? 'flip' : 'plain'}.g${this.generation}`);
    const keys = samples.map((s, i) => featureKey(pm.split.boundary, s, views[i]!));
    const secondary = useCache ? pm.secondary : undefined;
    return { fshape, augment, augEpochs, useCache, views, keys, secondary };
  }

  /**
   * Output of the frozen part for these samples, [n, ...boundary shape], from the cache when possible.
   * Training with augmentation reads each sample's cached view or (uncached) the epoch's own augmentation.
   * `flip`: of the mirror images (test-time augmentation; cached as their own view).
   */
  async host(pm: PhaseModels, samples: Sample[], mode: FeatureMode): Promise<{ data: Float32Array; shape: number[] }> {
    const { fshape, augment, augEpochs, useCache, views, keys, secondary } = this.lookup(pm, samples, mode);
    const size = fshape.reduce((a, b) => a * b, 1);
    const shape = [samples.length, ...fshape];
    const data = new Float32Array(samples.length * size);
    const missing: number[] = [];
    const secondSize = secondary ? boundaryShape(this.o.backbone, secondary.boundary).reduce((a, b) => a * b, 1) : 0;
    if (useCache) {
      keys.forEach((k, i) => {
        const v = this.o.cache!.get(k);
        if (v) data.set(v, i * size);
        else missing.push(i);
      });
    } else {
      for (let i = 0; i < samples.length; i++) missing.push(i);
    }
    // Decode chunk k+1 (sharp, off the main thread) while the frozen part runs on chunk k.
    const load = (idx: number[]) =>
      this.o.images.loadBatch(
        idx.map((i) => this.o.local(samples[i]!)),
        { augment, epochs: idx.map((i) => augEpochs[i]!) },
      );
    for await (const { idx, loaded: batch } of prefetchChunks(missing, this.o.chunk, load)) {
      // tidy returns the tensors, not their arrays: tidy walks what it returns, and walking a Float32Array visits
      // every element (~100 ms per VGG16 batch of 8).
      const outs = tf.tidy(() => {
        const pixels = tf.tensor(batch.data, [idx.length, ...batch.shape.slice(1)]);
        this.o.transfers.up(batch.data.byteLength);
        const x = mode.flip ? tf.reverse(pixels, 2) : pixels; // NHWC: axis 2 is the width
        return secondary ? (secondary.frozen.predict(x) as tf.Tensor[]) : [pm.frozen.predict(x) as tf.Tensor];
      });
      const [out, second] = outs.map((t) => {
        const a = new Float32Array(t.size);
        readTensorInto(t, a);
        this.o.transfers.down(a.byteLength);
        t.dispose();
        return a;
      });
      if (!out) throw new DptrainError('E_CONFIG', `the frozen part gave no output for ${pm.split.boundary}`);
      idx.forEach((i, j) => {
        const row = out.subarray(j * size, (j + 1) * size);
        data.set(useCache ? this.o.cache!.put(keys[i]!, row) : row, i * size);
        if (secondary && second)
          this.o.cache!.put(featureKey(secondary.boundary, samples[i]!, views[i]!), second.subarray(j * secondSize, (j + 1) * secondSize));
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
  async device(pm: PhaseModels, samples: Sample[], mode: FeatureMode): Promise<tf.Tensor> {
    const { fshape, augment, augEpochs, useCache, views, keys, secondary } = this.lookup(pm, samples, mode);
    const rows: tf.Tensor[] = new Array(samples.length);
    const temporary: tf.Tensor[] = [];
    const keep = (key: string, row: tf.Tensor, cache: boolean): void => {
      if (cache && this.o.deviceCache?.put(key, row)) return;
      if (cache) {
        const a = new Float32Array(row.size);
        readTensorInto(row, a);
        this.o.transfers.down(a.byteLength);
        this.o.cache!.put(key, a);
      }
      temporary.push(row);
    };
    const missing: number[] = [];
    samples.forEach((_, i) => {
      const onDevice = useCache ? this.o.deviceCache?.get(keys[i]!) : undefined;
      if (onDevice) return void (rows[i] = onDevice);
      const onHost = useCache ? this.o.cache!.get(keys[i]!) : undefined;
      if (!onHost) return void missing.push(i);
      rows[i] = tf.tensor(onHost, fshape);
      this.o.transfers.up(onHost.byteLength);
      temporary.push(rows[i]!);
    });
    const load = (idx: number[]) =>
      this.pixelsOnDevice(
        idx.map((i) => this.o.local(samples[i]!)),
        augment,
        idx.map((i) => augEpochs[i]!),
        mode.flip === true,
      );
    for await (const { idx, loaded: x } of prefetchChunks(missing, this.o.chunk, load)) {
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
    const raw = !augment && this.o.images.loadRawBatch ? await this.o.images.loadRawBatch(samples) : undefined;
    let x: tf.Tensor4D;
    if (raw) {
      const packed = packBytes(raw.data);
      this.o.transfers.up(packed.byteLength);
      x = tf.tidy(() =>
        preprocessOnDevice(unpackBytes(tf.tensor1d(packed, 'int32'), raw.data.length).reshape(raw.shape as number[]) as tf.Tensor4D, this.o.config.preprocess),
      );
    } else {
      const batch = await this.o.images.loadBatch(samples, { augment, epochs });
      this.o.transfers.up(batch.data.byteLength);
      x = tf.tensor4d(batch.data, [samples.length, batch.shape[1]!, batch.shape[2]!, batch.shape[3]!]);
    }
    if (!flip) return x;
    const mirrored = tf.reverse(x, 2) as tf.Tensor4D; // NHWC: axis 2 is the width
    x.dispose();
    return mirrored;
  }
}

/**
 * The chunks of `missing` (indices into a batch), each with what `load` made of it, in order; the next chunk's load
 * starts before the current one is handed out, so decoding overlaps the frozen pass. The event loop turns between
 * chunks: an already-settled load only yields to microtasks, and a worker's heartbeat timer must fire during long
 * frozen passes or the coordinator declares it lost.
 */
async function* prefetchChunks<T>(missing: number[], chunk: number, load: (idx: number[]) => Promise<T>): AsyncGenerator<{ idx: number[]; loaded: T }> {
  const start = (c: number): Promise<T> => {
    const p = load(missing.slice(c, c + chunk));
    p.catch(() => undefined);
    return p;
  };
  let next = missing.length > 0 ? start(0) : undefined;
  for (let c = 0; c < missing.length; c += chunk) {
    await yieldToEventLoop();
    const idx = missing.slice(c, c + chunk);
    const loaded = await (next as Promise<T>);
    next = c + chunk < missing.length ? start(c + chunk) : undefined;
    yield { idx, loaded };
  }
}

/** Resolves on the next turn of the event loop (after timers and I/O that are due). */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
