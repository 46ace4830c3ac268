import { AugmentationSchema, type Augmentation } from '../config.js';
import { rngFor, type Rng } from '../util/rng.js';

/** Augmentation options as accepted from callers (defaults filled by AugmentationSchema). */
export type AugmentationInput = Partial<Augmentation>;

/** The random parameters of one image's transform, with the meanings of Keras `get_random_transform`. */
export interface AffineParams {
  /** Rotation in degrees. */
  theta: number;
  /** Shift along rows (height) in pixels; Keras `tx`. Positive samples further down, so content moves up. */
  tx: number;
  /** Shift along columns (width) in pixels; Keras `ty`. Positive samples further right, so content moves left. */
  ty: number;
  /** Shear angle in degrees. */
  shear: number;
  /** Zoom along rows; > 1 shows more of the image (content shrinks), like Keras. */
  zx: number;
  /** Zoom along columns. */
  zy: number;
  /** Mirror left-right after the affine transform. */
  flipHorizontal: boolean;
}

export const IDENTITY_PARAMS: AffineParams = { theta: 0, tx: 0, ty: 0, shear: 0, zx: 1, zy: 1, flipHorizontal: false };

/** Fills defaults of an augmentation spec. */
export function normalizeAugmentation(aug: AugmentationInput | undefined): Augmentation {
  return AugmentationSchema.parse(aug ?? {});
}

/** True when the spec changes images at all. */
export function isAugmenting(aug: Augmentation): boolean {
  return aug.rotationRange > 0 || aug.widthShiftRange > 0 || aug.heightShiftRange > 0 || aug.shearRange > 0 || aug.zoomRange > 0 || aug.horizontalFlip;
}

/**
 * Draws one image's transform. Every parameter is always drawn, in a fixed order, so turning one option on
 * or off does not change the others' draws. Shift ranges < 1 are fractions of the size; >= 1 are pixels,
 * drawn uniformly in [-range, range) (Keras' float semantics).
 */
export function randomAffineParams(aug: Augmentation, height: number, width: number, rng: Rng): AffineParams {
  const rTheta = rng();
  const rTx = rng();
  const rTy = rng();
  const rShear = rng();
  const rZx = rng();
  const rZy = rng();
  const rFlip = rng();
  const lerp = (r: number, range: number) => -range + 2 * range * r;
  const shift = (r: number, range: number, size: number) => (range >= 1 ? lerp(r, range) : lerp(r, range) * size);
  return {
    theta: aug.rotationRange > 0 ? lerp(rTheta, aug.rotationRange) : 0,
    tx: aug.heightShiftRange > 0 ? shift(rTx, aug.heightShiftRange, height) : 0,
    ty: aug.widthShiftRange > 0 ? shift(rTy, aug.widthShiftRange, width) : 0,
    shear: aug.shearRange > 0 ? lerp(rShear, aug.shearRange) : 0,
    zx: aug.zoomRange > 0 ? 1 - aug.zoomRange + 2 * aug.zoomRange * rZx : 1,
    zy: aug.zoomRange > 0 ? 1 - aug.zoomRange + 2 * aug.zoomRange * rZy : 1,
    flipHorizontal: aug.horizontalFlip && rFlip < 0.5,
  };
}

/** The transform of sample `index` in `epoch` under `seed`: same triple, same transform, on every machine. */
export function affineParamsFor(aug: Augmentation, height: number, width: number, seed: number, epoch: number, index: number): AffineParams {
  return randomAffineParams(aug, height, width, rngFor(seed, epoch, index));
}

type Mat3 = [number, number, number, number, number, number, number, number, number];

function mul(a: Mat3, b: Mat3): Mat3 {
  const out = new Array<number>(9) as Mat3;
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      out[i * 3 + j] = a[i * 3]! * b[j]! + a[i * 3 + 1]! * b[3 + j]! + a[i * 3 + 2]! * b[6 + j]!;
    }
  }
  return out;
}

/**
 * The 3x3 matrix mapping output (row, col, 1) to input coordinates, built exactly like Keras
 * `apply_affine_transform`: rotation · shift · shear · zoom, then centred with `transform_matrix_offset_center`
 * (centre at ((h-1)/2, (w-1)/2)). The horizontal flip is not part of it.
 */
export function affineMatrix(p: AffineParams, height: number, width: number): Mat3 {
  let m: Mat3 = [1, 0, 0, 0, 1, 0, 0, 0, 1];
  if (p.theta !== 0) {
    const t = (p.theta * Math.PI) / 180;
    m = mul(m, [Math.cos(t), -Math.sin(t), 0, Math.sin(t), Math.cos(t), 0, 0, 0, 1]);
  }
  if (p.tx !== 0 || p.ty !== 0) m = mul(m, [1, 0, p.tx, 0, 1, p.ty, 0, 0, 1]);
  if (p.shear !== 0) {
    const s = (p.shear * Math.PI) / 180;
    m = mul(m, [1, -Math.sin(s), 0, 0, Math.cos(s), 0, 0, 0, 1]);
  }
  if (p.zx !== 1 || p.zy !== 1) m = mul(m, [p.zx, 0, 0, 0, p.zy, 0, 0, 0, 1]);
  const ox = height / 2 - 0.5;
  const oy = width / 2 - 0.5;
  return mul(mul([1, 0, ox, 0, 1, oy, 0, 0, 1], m), [1, 0, -ox, 0, 1, -oy, 0, 0, 1]);
}

function isIdentityAffine(p: AffineParams): boolean {
  return p.theta === 0 && p.tx === 0 && p.ty === 0 && p.shear === 0 && p.zx === 1 && p.zy === 1;
}

/** Maps an integer tap index into [0, n) by fill mode (constant mode is handled by the caller). */
function mapIndex(i: number, n: number, mode: Augmentation['fillMode']): number {
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case 'wrap':
      return ((i % n) + n) % n;
    case 'reflect': {
      // scipy 'reflect' (half-sample symmetric): d c b a | a b c d | d c b a
      const period = 2 * n;
      const k = ((i % period) + period) % period;
      return k < n ? k : period - 1 - k;
    }
    default:
      return i < 0 ? 0 : n - 1;
  }
}

/**
 * Applies one affine transform (+ optional horizontal flip) to an RGB HWC image, writing float values into
 * `dst` at `dstOffset` (same size as the source). Sampling is bilinear (Keras' default interpolation_order=1).
 * Fill modes follow scipy.ndimage as Keras uses it: 'nearest' clamps, 'reflect' mirrors about the edge
 * (d c b a | a b c d), 'wrap' repeats periodically, 'constant' gives `cval` for points outside the image
 * (no blending with cval inside it).
 */
export function applyAffine(
  src: ArrayLike<number>,
  height: number,
  width: number,
  params: AffineParams,
  fillMode: Augmentation['fillMode'],
  cval: number,
  dst: Float32Array,
  dstOffset = 0,
): void {
  const h = height;
  const w = width;
  if (isIdentityAffine(params)) {
    for (let r = 0; r < h; r++) {
      for (let c = 0; c < w; c++) {
        const sc = params.flipHorizontal ? w - 1 - c : c;
        const s = (r * w + sc) * 3;
        const d = dstOffset + (r * w + c) * 3;
        dst[d] = src[s] as number;
        dst[d + 1] = src[s + 1] as number;
        dst[d + 2] = src[s + 2] as number;
      }
    }
    return;
  }
  const m = affineMatrix(params, h, w);
  const [a, b, e, c2, d2, f] = [m[0], m[1], m[2], m[3], m[4], m[5]];
  const eps = 1e-6;
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      const cc = params.flipHorizontal ? w - 1 - c : c;
      const ri = a * r + b * cc + e;
      const ci = c2 * r + d2 * cc + f;
      const o = dstOffset + (r * w + c) * 3;
      if (fillMode === 'constant' && (ri < -eps || ri > h - 1 + eps || ci < -eps || ci > w - 1 + eps)) {
        dst[o] = cval;
        dst[o + 1] = cval;
        dst[o + 2] = cval;
        continue;
      }
      const r0f = Math.floor(ri);
      const c0f = Math.floor(ci);
      const fr = ri - r0f;
      const fc = ci - c0f;
      const mode = fillMode === 'constant' ? 'nearest' : fillMode;
      const r0 = mapIndex(r0f, h, mode);
      const r1 = mapIndex(r0f + 1, h, mode);
      const c0 = mapIndex(c0f, w, mode);
      const c1 = mapIndex(c0f + 1, w, mode);
      const i00 = (r0 * w + c0) * 3;
      const i01 = (r0 * w + c1) * 3;
      const i10 = (r1 * w + c0) * 3;
      const i11 = (r1 * w + c1) * 3;
      const w00 = (1 - fr) * (1 - fc);
      const w01 = (1 - fr) * fc;
      const w10 = fr * (1 - fc);
      const w11 = fr * fc;
      for (let k = 0; k < 3; k++) {
        dst[o + k] = w00 * (src[i00 + k] as number) + w01 * (src[i01 + k] as number) + w10 * (src[i10 + k] as number) + w11 * (src[i11 + k] as number);
      }
    }
  }
}

/**
 * Augments one RGB HWC image (0..255) deterministically for (seed, epoch, index) and returns float values
 * (still 0..255; preprocessing comes after, as in Keras where `standardize` follows `random_transform`).
 */
export function augmentImage(
  src: ArrayLike<number>,
  height: number,
  width: number,
  aug: AugmentationInput,
  seed: number,
  epoch: number,
  index: number,
): Float32Array {
  const spec = normalizeAugmentation(aug);
  const out = new Float32Array(height * width * 3);
  const p = affineParamsFor(spec, height, width, seed, epoch, index);
  applyAffine(src, height, width, p, spec.fillMode, spec.cval, out, 0);
  return out;
}
