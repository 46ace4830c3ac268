import sharp from 'sharp';
import { DptrainError } from '../errors.js';
import { clipForMessage } from './clip.js';
import { readImageFile } from './image-file.js';

/** Resampling kernel used by sharp when resizing to the model's input size. */
export type ResizeKernel = 'nearest' | 'linear' | 'cubic' | 'mitchell' | 'lanczos2' | 'lanczos3';

export interface DecodeOptions {
  /** Resampling kernel for the resize. Default 'linear' (bilinear, like tf.image.resize / Keras image_dataset_from_directory). */
  kernel?: ResizeKernel;
  /** For a path: the folder it must stay inside once symlinks are resolved. Default: no containment check. */
  root?: string;
  /** For a path: largest file read, in bytes. Default DEFAULT_MAX_IMAGE_BYTES (64 MiB). */
  maxBytes?: number;
}

/** A decoded RGB image, HWC, 8 bits per channel. */
export interface DecodedImage {
  /** h*w*3 bytes, RGB, row-major. */
  data: Uint8Array;
  height: number;
  width: number;
}

/**
 * Decodes an image file (or buffer) with sharp and resizes it to exactly `inputSize` = [height, width]
 * (aspect ratio not kept, like Keras `target_size`). Grey and CMYK images become sRGB, alpha is dropped
 * (flattened on black), so the result always has 3 channels.
 * A path is read with readImageFile (regular files only, size-capped, inside `root` when given).
 * Throws DptrainError('E_DATA_IMAGE') naming the file when it cannot be read or decoded.
 */
export async function decodeImage(input: string | Buffer, inputSize: readonly [number, number], options: DecodeOptions = {}): Promise<DecodedImage> {
  const [height, width] = inputSize;
  const kernel = options.kernel ?? 'linear';
  const bytes0 =
    typeof input === 'string'
      ? await readImageFile(input, {
          ...(options.root !== undefined ? { root: options.root } : {}),
          ...(options.maxBytes !== undefined ? { maxBytes: options.maxBytes } : {}),
        })
      : input;
  try {
    const { data, info } = await sharp(bytes0, { failOn: 'warning' })
      .toColourspace('srgb')
      .removeAlpha()
      .resize(width, height, { fit: 'fill', kernel })
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.width !== width || info.height !== height) {
      throw new Error(`resize produced ${info.width}x${info.height}`);
    }
    let bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (info.channels !== 3) bytes = toRgb(bytes, info.channels, width * height);
    return { data: bytes, height, width };
  } catch (e) {
    const what = typeof input === 'string' ? input : 'image buffer';
    throw new DptrainError('E_DATA_IMAGE', `cannot decode ${clipForMessage(what)}: ${clipForMessage((e as Error).message, 300)}`, { file: what }, { cause: e });
  }
}

function toRgb(src: Uint8Array, channels: number, pixels: number): Uint8Array {
  const out = new Uint8Array(pixels * 3);
  for (let p = 0; p < pixels; p++) {
    const s = p * channels;
    if (channels < 3) {
      const v = src[s] as number;
      out[p * 3] = v;
      out[p * 3 + 1] = v;
      out[p * 3 + 2] = v;
    } else {
      out[p * 3] = src[s] as number;
      out[p * 3 + 1] = src[s + 1] as number;
      out[p * 3 + 2] = src[s + 2] as number;
    }
  }
  return out;
}
