import { describe, expect, it } from 'vitest';
import { IDENTITY_PARAMS, affineParamsFor, applyAffine, augmentImage, normalizeAugmentation, type AffineParams } from './augment.js';

const H = 6;
const W = 8;
/** Test image: pixel (r, c) = (r*10 + c, 100 + c, 200 - r) so every pixel is distinct. */
function img(h = H, w = W): Float32Array {
  const a = new Float32Array(h * w * 3);
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      const o = (r * w + c) * 3;
      a[o] = r * 10 + c;
      a[o + 1] = 100 + c;
      a[o + 2] = 200 - r;
    }
  }
  return a;
}
const px = (a: Float32Array, r: number, c: number, w = W) => Array.from(a.slice((r * w + c) * 3, (r * w + c) * 3 + 3));
function run(p: Partial<AffineParams>, fill: 'nearest' | 'constant' | 'reflect' | 'wrap' = 'nearest', cval = 0, h = H, w = W) {
  const out = new Float32Array(h * w * 3);
  applyAffine(img(h, w), h, w, { ...IDENTITY_PARAMS, ...p }, fill, cval, out);
  return out;
}
function close(a: number[], b: number[]) {
  expect(a.length).toBe(b.length);
  a.forEach((v, i) => expect(v).toBeCloseTo(b[i]!, 4));
}

describe('augmentation (Keras ImageDataGenerator semantics)', () => {
  it('identity keeps the image; horizontal flip mirrors columns', () => {
    expect(Array.from(run({}))).toEqual(Array.from(img()));
    const f = run({ flipHorizontal: true });
    for (let r = 0; r < H; r++) for (let c = 0; c < W; c++) expect(px(f, r, c)).toEqual(px(img(), r, W - 1 - c));
  });

  it('width shift ty moves content left by ty pixels; fill modes at the right border', () => {
    const src = img();
    const ty = 3;
    const expectCol = (out: Float32Array, mapped: (c: number) => number | 'cval') => {
      for (let r = 0; r < H; r++) {
        for (let c = 0; c < W; c++) {
          const m = mapped(c + ty);
          if (m === 'cval') expect(px(out, r, c)).toEqual([7, 7, 7]);
          else close(px(out, r, c), px(src, r, m));
        }
      }
    };
    expectCol(run({ ty }, 'nearest'), (c) => Math.min(c, W - 1));
    expectCol(run({ ty }, 'constant', 7), (c) => (c < W ? c : 'cval'));
    expectCol(run({ ty }, 'wrap'), (c) => c % W);
    expectCol(run({ ty }, 'reflect'), (c) => (c < W ? c : 2 * W - 1 - c));
  });

  it('height shift tx moves content up by tx pixels (negative: down, with nearest fill on top)', () => {
    const src = img();
    const out = run({ tx: -2 });
    for (let r = 0; r < H; r++) for (let c = 0; c < W; c++) close(px(out, r, c), px(src, Math.max(r - 2, 0), c));
  });

  it('rotation by 90 degrees about the centre is an exact quarter turn', () => {
    const n = 5;
    const src = img(n, n);
    const out = run({ theta: 90 }, 'nearest', 0, n, n);
    for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) close(px(out, r, c, n), px(src, n - 1 - c, r, n));
  });

  it('zoom > 1 shows more of the image (content shrinks about the centre), bilinear between pixels', () => {
    const n = 5; // centre (2, 2)
    const src = img(n, n);
    const out = run({ zx: 2, zy: 2 }, 'constant', 0, n, n);
    close(px(out, 2, 2, n), px(src, 2, 2, n));
    close(px(out, 1, 1, n), px(src, 0, 0, n)); // 2 + 2*(1-2) = 0
    expect(px(out, 0, 0, n)).toEqual([0, 0, 0]); // samples (-2,-2): outside → cval
    const half = run({ zx: 0.5, zy: 0.5 }, 'nearest', 0, n, n); // content grows: (3,2) samples (2.5, 2)
    close(
      px(half, 3, 2, n),
      px(src, 2, 2, n).map((v, k) => (v + px(src, 3, 2, n)[k]!) / 2),
    );
  });

  it('shear follows the Keras matrix [[1, -sin s, 0], [0, cos s, 0]]', () => {
    const src = img();
    const out = run({ shear: 30 });
    // output (r, c) samples row = r - sin(30°)*(c - cy), col = cy + cos(30°)*(c - cy); at the centre column row is unchanged
    const cy = (W - 1) / 2;
    const r = 3;
    const c = 5;
    const ri = r - Math.sin(Math.PI / 6) * (c - cy);
    const ci = cy + Math.cos(Math.PI / 6) * (c - cy);
    const r0 = Math.floor(ri);
    const c0 = Math.floor(ci);
    const fr = ri - r0;
    const fc = ci - c0;
    const expected = [0, 1, 2].map(
      (k) =>
        (1 - fr) * (1 - fc) * px(src, r0, c0)[k]! +
        (1 - fr) * fc * px(src, r0, c0 + 1)[k]! +
        fr * (1 - fc) * px(src, r0 + 1, c0)[k]! +
        fr * fc * px(src, r0 + 1, c0 + 1)[k]!,
    );
    close(px(out, r, c), expected);
  });

  it('draws are deterministic per (seed, epoch, index), within the Keras ranges', () => {
    const aug = normalizeAugmentation({ rotationRange: 20, widthShiftRange: 0.1, heightShiftRange: 4, shearRange: 10, zoomRange: 0.2, horizontalFlip: true });
    const a = affineParamsFor(aug, 100, 50, 7, 2, 13);
    expect(affineParamsFor(aug, 100, 50, 7, 2, 13)).toEqual(a);
    expect(affineParamsFor(aug, 100, 50, 7, 3, 13)).not.toEqual(a);
    expect(affineParamsFor(aug, 100, 50, 7, 2, 14)).not.toEqual(a);
    expect(affineParamsFor(aug, 100, 50, 8, 2, 13)).not.toEqual(a);
    let flips = 0;
    for (let i = 0; i < 400; i++) {
      const p = affineParamsFor(aug, 100, 50, 1, 0, i);
      expect(Math.abs(p.theta)).toBeLessThanOrEqual(20);
      expect(Math.abs(p.ty)).toBeLessThanOrEqual(0.1 * 50); // fraction of width
      expect(Math.abs(p.tx)).toBeLessThanOrEqual(4); // >= 1: pixels
      expect(Math.abs(p.shear)).toBeLessThanOrEqual(10);
      for (const z of [p.zx, p.zy]) expect(z >= 0.8 && z <= 1.2).toBe(true);
      if (p.flipHorizontal) flips++;
    }
    expect(flips).toBeGreaterThan(150);
    expect(flips).toBeLessThan(250);
    // turning rotation off leaves the flip draws unchanged
    const noRot = normalizeAugmentation({ horizontalFlip: true });
    expect(affineParamsFor(noRot, 100, 50, 7, 2, 13).flipHorizontal).toBe(a.flipHorizontal);
    const none = normalizeAugmentation({});
    expect(affineParamsFor(none, 100, 50, 7, 2, 13)).toEqual(IDENTITY_PARAMS);
    const x = augmentImage(img(), H, W, { rotationRange: 45 }, 1, 0, 0);
    expect(Array.from(augmentImage(img(), H, W, { rotationRange: 45 }, 1, 0, 0))).toEqual(Array.from(x));
  });
});
