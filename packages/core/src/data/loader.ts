import type { Augmentation, PreprocessMode } from '../config.js';
import type { Sample } from './types.js';
import { decodeImage, type ResizeKernel } from './decode.js';
import { preprocessInPlace } from './preprocess.js';
import { affineParamsFor, applyAffine, isAugmenting, normalizeAugmentation, type AugmentationInput } from './augment.js';
import pMap from 'p-map';
import { DEFAULT_MAX_IMAGE_BYTES } from './image-file.js';

export interface ImageBatchLoaderOptions {
  /** Model input size [height, width]. Required. */
  inputSize: readonly [number, number];
  /** Per-backbone preprocessing ('caffe' | 'tf' | 'unit'). Required. */
  preprocess: PreprocessMode;
  /** Augmentation (Keras ImageDataGenerator meanings), applied when a batch is loaded with `augment: true`. Default: none. */
  augmentation?: AugmentationInput;
  /** Seed of the augmentation draws; with epoch and sample index it fixes each image's transform. Default 0. */
  seed?: number;
  /** Images decoded at the same time. Default 4. */
  concurrency?: number;
  /** Batches decoded ahead of the consumer by `batches()`. Default 2. */
  prefetch?: number;
  /** Resize kernel. Default 'linear'. */
  kernel?: ResizeKernel;
  /** Folder every image must stay inside once symlinks are resolved (Dataset.imagesRoot). Default: no containment check. */
  imagesRoot?: string;
  /** Largest image file read, in bytes. Default DEFAULT_MAX_IMAGE_BYTES (64 MiB). */
  maxImageBytes?: number;
}

export interface LoadBatchOptions {
  /** Epoch number (augmentation draws depend on it). Default 0. */
  epoch?: number;
  /** Apply the loader's augmentation. Default false. */
  augment?: boolean;
  /** loadBatch: each sample's own epoch for its augmentation draw (one per sample, in order), instead of `epoch`. Default: none. */
  epochs?: readonly number[];
}

/** One batch of preprocessed images, NHWC float32, plus labels (-1 for test samples). */
export interface ImageBatch {
  data: Float32Array;
  shape: [number, number, number, 3];
  labels: Int32Array;
  /** The samples of this batch, in order. */
  samples: readonly Sample[];
}

/**
 * Decodes, augments and preprocesses batches of samples into plain typed arrays (no tf here: callers make
 * tensors). Decoding runs in parallel (sharp in libuv's pool) with bounded concurrency; `batches()` prefetches
 * a bounded number of batches ahead.
 */
export class ImageBatchLoader {
  readonly inputSize: readonly [number, number];
  readonly preprocess: PreprocessMode;
  readonly augmentation: Augmentation;
  readonly seed: number;
  readonly concurrency: number;
  readonly prefetch: number;
  readonly kernel: ResizeKernel;
  readonly imagesRoot: string | undefined;
  readonly maxImageBytes: number;

  constructor(options: ImageBatchLoaderOptions) {
    this.inputSize = options.inputSize;
    this.preprocess = options.preprocess;
    this.augmentation = normalizeAugmentation(options.augmentation);
    this.seed = options.seed ?? 0;
    this.concurrency = Math.max(1, Math.floor(options.concurrency ?? 4));
    this.prefetch = Math.max(0, options.prefetch ?? 2);
    this.kernel = options.kernel ?? 'linear';
    this.imagesRoot = options.imagesRoot;
    this.maxImageBytes = options.maxImageBytes ?? DEFAULT_MAX_IMAGE_BYTES;
  }

  /** Number of floats of one image. */
  get imageSize(): number {
    return this.inputSize[0] * this.inputSize[1] * 3;
  }

  /**
   * Decodes one sample into `dst` at `offset` (allocating when `dst` is omitted) and returns the buffer.
   * Throws DptrainError('E_DATA_IMAGE') when the file cannot be decoded.
   */
  async loadImage(sample: Sample, options: LoadBatchOptions = {}, dst?: Float32Array, offset = 0): Promise<Float32Array> {
    const [h, w] = this.inputSize;
    const out = dst ?? new Float32Array(this.imageSize);
    const img = await decodeImage(sample.path, this.inputSize, {
      kernel: this.kernel,
      maxBytes: this.maxImageBytes,
      ...(this.imagesRoot !== undefined ? { root: this.imagesRoot } : {}),
    });
    if (options.augment && isAugmenting(this.augmentation)) {
      const p = affineParamsFor(this.augmentation, h, w, this.seed, options.epoch ?? 0, sample.index);
      applyAffine(img.data, h, w, p, this.augmentation.fillMode, this.augmentation.cval, out, offset);
    } else {
      const src = img.data;
      for (let i = 0; i < src.length; i++) out[offset + i] = src[i] as number;
    }
    preprocessInPlace(out, this.preprocess, offset, h * w);
    return out;
  }

  /** Loads one batch: images in the order of `samples`. */
  async loadBatch(samples: readonly Sample[], options: LoadBatchOptions = {}): Promise<ImageBatch> {
    const [h, w] = this.inputSize;
    const size = this.imageSize;
    const data = new Float32Array(samples.length * size);
    const labels = new Int32Array(samples.length);
    await pMap(
      samples,
      async (s, i) => {
        labels[i] = s.label;
        await this.loadImage(s, options.epochs ? { ...options, epoch: options.epochs[i] ?? 0 } : options, data, i * size);
      },
      { concurrency: this.concurrency },
    );
    return { data, shape: [samples.length, h, w, 3], labels, samples };
  }

  /**
   * Loads one batch as RGB bytes (HWC, 0..255, no augmentation, not preprocessed): for a device that preprocesses
   * the pixels itself (a quarter of the float32 bytes to upload).
   */
  async loadRawBatch(samples: readonly Sample[]): Promise<{ data: Uint8Array; shape: [number, number, number, number] }> {
    const [h, w] = this.inputSize;
    const size = this.imageSize;
    const data = new Uint8Array(samples.length * size);
    await pMap(
      samples,
      async (s, i) => {
        const img = await decodeImage(s.path, this.inputSize, { kernel: this.kernel });
        data.set(img.data, i * size);
      },
      { concurrency: this.concurrency },
    );
    return { data, shape: [samples.length, h, w, 3] };
  }

  /**
   * Iterates over `batches` in order, decoding up to `prefetch` batches ahead of the batch the consumer holds
   * (so at most prefetch + 1 batches are in memory). An error in a batch surfaces when that batch is reached.
   * Stopping the iteration early (break) stops further decoding.
   */
  async *batches(batches: readonly (readonly Sample[])[], options: LoadBatchOptions = {}): AsyncGenerator<ImageBatch> {
    const pending: Promise<ImageBatch>[] = [];
    let next = 0;
    const start = () => {
      const p = this.loadBatch(batches[next] as Sample[], options);
      // No unhandled-rejection noise for batches not reached yet; the error is rethrown when awaited.
      p.catch(() => undefined);
      pending.push(p);
      next++;
    };
    try {
      while (next < batches.length || pending.length > 0) {
        if (pending.length === 0) start();
        const batch = await (pending.shift() as Promise<ImageBatch>);
        while (next < batches.length && pending.length < this.prefetch) start();
        yield batch;
      }
    } finally {
      next = batches.length;
      pending.length = 0;
    }
  }
}
