import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import pMap from 'p-map';
import { randInt, rngFor, shuffleInPlace, uniform, type Rng } from '../util/rng.js';

/** Class names of the synthetic scenes, index = label (same order as the Kaggle/Intel scene task). */
export const SYNTHETIC_CLASS_NAMES: readonly string[] = ['buildings', 'forest', 'glacier', 'mountain', 'sea', 'street'];

export interface SyntheticScenesOptions {
  /** Seed: same seed, same images (byte for byte with the same sharp/libvips build). Default 0. */
  seed?: number;
  /** Labelled images per class (train.csv). Default 60. */
  perClass?: number;
  /** Test images per class (test.csv / test_labels.csv). Default 15. */
  testPerClass?: number;
  /** Image side in pixels. Default 150. */
  size?: number;
  /** JPEG quality. Default 90. */
  quality?: number;
  /** Images rendered at the same time. Default 4. */
  concurrency?: number;
  /** Called after each image with (done, total). Default: none. */
  onProgress?: (done: number, total: number) => void;
}

export interface SyntheticScenesResult {
  /** The data directory written (competition layout). */
  dir: string;
  classNames: string[];
  /** Number of labelled / test images. */
  train: number;
  test: number;
  /** sha256 over all files written (CSV texts and image bytes, in name order). */
  hash: string;
}

const SCENE_STREAM = 0x5ce7e;

type Painter = (rng: Rng, s: number) => string;

const f = (x: number) => x.toFixed(1);
function hsl(rng: Rng, h: number, s: number, l: number, jh = 12, js = 10, jl = 10): string {
  const hh = (h + uniform(rng, -jh, jh) + 360) % 360;
  const ss = Math.min(100, Math.max(0, s + uniform(rng, -js, js)));
  const ll = Math.min(100, Math.max(0, l + uniform(rng, -jl, jl)));
  return `hsl(${f(hh)},${f(ss)}%,${f(ll)}%)`;
}
function sky(rng: Rng, s: number, horizon: number, grey = false): string {
  const top = grey ? hsl(rng, 210, 10, 70, 20, 10, 12) : hsl(rng, 210, 60, 60, 15, 20, 15);
  const bottom = grey ? hsl(rng, 210, 8, 82, 20, 8, 8) : hsl(rng, 200, 45, 82, 15, 20, 8);
  return (
    `<defs><linearGradient id="sky" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="${top}"/>` +
    `<stop offset="1" stop-color="${bottom}"/></linearGradient></defs>` +
    `<rect x="0" y="0" width="${s}" height="${f(horizon)}" fill="url(#sky)"/>`
  );
}
function clouds(rng: Rng, s: number, maxY: number): string {
  let out = '';
  const n = randInt(rng, 0, 3);
  for (let i = 0; i < n; i++) {
    const x = uniform(rng, 0, s);
    const y = uniform(rng, 0.05 * s, Math.max(0.06 * s, maxY));
    out += `<ellipse cx="${f(x)}" cy="${f(y)}" rx="${f(uniform(rng, 0.08, 0.2) * s)}" ry="${f(uniform(rng, 0.03, 0.06) * s)}" fill="white" opacity="${f(uniform(rng, 0.4, 0.9))}"/>`;
  }
  return out;
}
function windows(rng: Rng, x: number, y: number, w: number, h: number, s: number): string {
  const cell = uniform(rng, 0.04, 0.07) * s;
  const lit = hsl(rng, 50, 60, 70, 10, 20, 15);
  const dark = hsl(rng, 220, 20, 25, 20, 10, 10);
  let out = '';
  for (let yy = y + cell * 0.5; yy < y + h - cell; yy += cell * 1.4) {
    for (let xx = x + cell * 0.4; xx < x + w - cell * 0.8; xx += cell * 1.3) {
      out += `<rect x="${f(xx)}" y="${f(yy)}" width="${f(cell * 0.7)}" height="${f(cell * 0.8)}" fill="${rng() < 0.3 ? lit : dark}"/>`;
    }
  }
  return out;
}

const buildings: Painter = (rng, s) => {
  const horizon = s;
  let out = sky(rng, s, horizon, rng() < 0.4) + clouds(rng, s, 0.3 * s);
  const n = randInt(rng, 2, 5);
  let x = uniform(rng, -0.15, 0.05) * s;
  for (let i = 0; i < n && x < s; i++) {
    const w = uniform(rng, 0.22, 0.45) * s;
    const top = uniform(rng, 0.05, 0.5) * s;
    const col = hsl(rng, rng() < 0.5 ? 30 : 215, 15, 55, 15, 12, 20);
    out += `<rect x="${f(x)}" y="${f(top)}" width="${f(w)}" height="${f(s - top)}" fill="${col}"/>`;
    out += windows(rng, x, top, w, s - top, s);
    x += w + uniform(rng, -0.05, 0.08) * s;
  }
  return out;
};

const forest: Painter = (rng, s) => {
  let out = `<rect width="${s}" height="${s}" fill="${hsl(rng, 110, 40, 22, 20, 15, 8)}"/>`;
  if (rng() < 0.5) out += `<rect width="${s}" height="${f(uniform(rng, 0.05, 0.25) * s)}" fill="${hsl(rng, 200, 30, 75, 20, 20, 10)}"/>`;
  const trunks = randInt(rng, 6, 16);
  for (let i = 0; i < trunks; i++) {
    const x = uniform(rng, 0, s);
    const w = uniform(rng, 0.015, 0.05) * s;
    out += `<rect x="${f(x)}" y="0" width="${f(w)}" height="${s}" fill="${hsl(rng, 25, 35, 22, 10, 15, 10)}"/>`;
  }
  const leaves = randInt(rng, 18, 40);
  for (let i = 0; i < leaves; i++) {
    out += `<ellipse cx="${f(uniform(rng, 0, s))}" cy="${f(uniform(rng, 0, 0.8) * s)}" rx="${f(uniform(rng, 0.05, 0.16) * s)}" ry="${f(uniform(rng, 0.05, 0.14) * s)}" fill="${hsl(rng, 105, 45, 30, 25, 20, 12)}" opacity="${f(uniform(rng, 0.6, 1))}"/>`;
  }
  out += `<rect y="${f(0.85 * s)}" width="${s}" height="${f(0.15 * s)}" fill="${hsl(rng, 80, 30, 25, 20, 15, 10)}" opacity="0.8"/>`;
  return out;
};

function jagged(rng: Rng, s: number, baseY: number, amp: number, steps: number): string {
  const pts: string[] = [`0,${s}`];
  for (let i = 0; i <= steps; i++) {
    pts.push(`${f((i / steps) * s)},${f(baseY + uniform(rng, -amp, amp))}`);
  }
  pts.push(`${s},${s}`);
  return pts.join(' ');
}

const glacier: Painter = (rng, s) => {
  const horizon = uniform(rng, 0.25, 0.5) * s;
  let out = sky(rng, s, s, rng() < 0.5) + clouds(rng, s, horizon * 0.6);
  out += `<polygon points="${jagged(rng, s, horizon, 0.08 * s, randInt(rng, 5, 10))}" fill="${hsl(rng, 195, 35, 88, 10, 20, 6)}"/>`;
  const slabs = randInt(rng, 3, 7);
  for (let i = 0; i < slabs; i++) {
    const cx = uniform(rng, 0, s);
    const cy = uniform(rng, horizon, s);
    const r = uniform(rng, 0.08, 0.25) * s;
    const pts = [0, 1, 2, 3, 4].map((k) => {
      const a = (k / 5) * Math.PI * 2 + uniform(rng, -0.4, 0.4);
      return `${f(cx + Math.cos(a) * r)},${f(cy + Math.sin(a) * r * 0.6)}`;
    });
    out += `<polygon points="${pts.join(' ')}" fill="${hsl(rng, 190, 50, 78, 12, 20, 12)}" opacity="${f(uniform(rng, 0.6, 1))}"/>`;
  }
  if (rng() < 0.4) out += `<rect y="${f(uniform(rng, 0.8, 0.92) * s)}" width="${s}" height="${f(0.2 * s)}" fill="${hsl(rng, 200, 50, 45, 10, 15, 10)}"/>`;
  return out;
};

const mountain: Painter = (rng, s) => {
  const horizon = uniform(rng, 0.55, 0.8) * s;
  let out = sky(rng, s, s, rng() < 0.3) + clouds(rng, s, 0.3 * s);
  const peaks = randInt(rng, 2, 4);
  for (let i = 0; i < peaks; i++) {
    const px = uniform(rng, 0.1, 0.9) * s;
    const py = uniform(rng, 0.12, 0.45) * s;
    const half = uniform(rng, 0.3, 0.6) * s;
    const col = hsl(rng, rng() < 0.5 ? 25 : 240, 15, 40, 15, 10, 12);
    out += `<polygon points="${f(px - half)},${f(horizon + 0.1 * s)} ${f(px)},${f(py)} ${f(px + half)},${f(horizon + 0.1 * s)}" fill="${col}"/>`;
    if (rng() < 0.5) {
      const k = uniform(rng, 0.15, 0.3);
      const ys = py + (horizon - py) * k;
      out += `<polygon points="${f(px - half * k)},${f(ys)} ${f(px)},${f(py)} ${f(px + half * k)},${f(ys)}" fill="${hsl(rng, 200, 10, 92, 10, 10, 5)}"/>`;
    }
  }
  out += `<polygon points="${jagged(rng, s, horizon + 0.05 * s, 0.04 * s, 8)}" fill="${hsl(rng, 90, 30, 32, 30, 15, 10)}"/>`;
  return out;
};

const sea: Painter = (rng, s) => {
  const horizon = uniform(rng, 0.3, 0.55) * s;
  let out = sky(rng, s, horizon + 1, rng() < 0.3) + clouds(rng, s, horizon * 0.7);
  if (rng() < 0.4)
    out += `<circle cx="${f(uniform(rng, 0.1, 0.9) * s)}" cy="${f(horizon * uniform(rng, 0.3, 0.8))}" r="${f(0.06 * s)}" fill="${hsl(rng, 45, 90, 75, 10, 10, 10)}"/>`;
  out +=
    `<defs><linearGradient id="sea" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="${hsl(rng, 205, 60, 35, 15, 15, 10)}"/>` +
    `<stop offset="1" stop-color="${hsl(rng, 185, 55, 45, 15, 15, 10)}"/></linearGradient></defs>` +
    `<rect y="${f(horizon)}" width="${s}" height="${f(s - horizon)}" fill="url(#sea)"/>`;
  const waves = randInt(rng, 4, 12);
  for (let i = 0; i < waves; i++) {
    const y = uniform(rng, horizon + 4, s);
    const x = uniform(rng, -0.2, 0.8) * s;
    const w = uniform(rng, 0.15, 0.5) * s;
    out += `<path d="M${f(x)},${f(y)} q${f(w / 4)},-3 ${f(w / 2)},0 t${f(w / 2)},0" stroke="white" stroke-width="${f(uniform(rng, 0.8, 2.5))}" fill="none" opacity="${f(uniform(rng, 0.4, 0.9))}"/>`;
  }
  if (rng() < 0.4) {
    const beach = uniform(rng, 0.75, 0.9) * s;
    out += `<polygon points="${jagged(rng, s, beach, 0.03 * s, 6)}" fill="${hsl(rng, 40, 45, 70, 8, 15, 10)}"/>`;
  }
  return out;
};

const street: Painter = (rng, s) => {
  const vx = uniform(rng, 0.35, 0.65) * s;
  const vy = uniform(rng, 0.3, 0.5) * s;
  let out = sky(rng, s, s, rng() < 0.5);
  // buildings on both sides in perspective
  const sideCol = () => hsl(rng, rng() < 0.5 ? 30 : 220, 15, 50, 15, 12, 18);
  out += `<polygon points="0,${f(uniform(rng, 0, 0.2) * s)} ${f(vx - 0.08 * s)},${f(vy - 0.1 * s)} ${f(vx - 0.08 * s)},${f(vy + 0.05 * s)} 0,${s}" fill="${sideCol()}"/>`;
  out += `<polygon points="${s},${f(uniform(rng, 0, 0.2) * s)} ${f(vx + 0.08 * s)},${f(vy - 0.1 * s)} ${f(vx + 0.08 * s)},${f(vy + 0.05 * s)} ${s},${s}" fill="${sideCol()}"/>`;
  if (rng() < 0.6) out += windows(rng, 0, uniform(rng, 0.1, 0.3) * s, uniform(rng, 0.15, 0.25) * s, 0.35 * s, s);
  // road
  out += `<polygon points="${f(vx - 0.04 * s)},${f(vy + 0.05 * s)} ${f(vx + 0.04 * s)},${f(vy + 0.05 * s)} ${f(s * uniform(rng, 1.0, 1.3))},${s} ${f(-s * uniform(rng, 0, 0.3))},${s}" fill="${hsl(rng, 220, 5, 35, 20, 5, 10)}"/>`;
  const lane = rng() < 0.5 ? 'white' : hsl(rng, 50, 80, 60, 5, 10, 10);
  for (let t = 0.15; t < 1; t += 0.2) {
    const y0 = vy + 0.05 * s + (s - vy - 0.05 * s) * t;
    const y1 = y0 + (s - vy) * 0.08;
    out += `<line x1="${f(vx)}" y1="${f(y0)}" x2="${f(vx)}" y2="${f(y1)}" stroke="${lane}" stroke-width="${f(1 + t * 3)}"/>`;
  }
  const cars = randInt(rng, 0, 3);
  for (let i = 0; i < cars; i++) {
    const t = uniform(rng, 0.3, 0.9);
    const y = vy + (s - vy) * t;
    const w = 0.25 * s * t;
    const x = vx + uniform(rng, -1, 1) * 0.3 * s * t - w / 2;
    out += `<rect x="${f(x)}" y="${f(y - w * 0.5)}" width="${f(w)}" height="${f(w * 0.5)}" rx="${f(w * 0.1)}" fill="${hsl(rng, uniform(rng, 0, 360), 60, 45, 0, 20, 15)}"/>`;
  }
  return out;
};

/** An element borrowed from another class (a tree, a strip of water, a far peak, a block), to blur the classes. */
const distractor: Painter = (rng, s) => {
  const kind = randInt(rng, 0, 3);
  const left = rng() < 0.5;
  const x0 = left ? uniform(rng, -0.1, 0.15) * s : uniform(rng, 0.65, 0.9) * s;
  if (kind === 0) {
    let out = `<rect x="${f(x0 + 0.08 * s)}" y="${f(0.45 * s)}" width="${f(0.04 * s)}" height="${f(0.55 * s)}" fill="${hsl(rng, 25, 35, 22)}"/>`;
    for (let i = 0; i < 5; i++) {
      out += `<ellipse cx="${f(x0 + uniform(rng, 0, 0.2) * s)}" cy="${f(uniform(rng, 0.3, 0.55) * s)}" rx="${f(uniform(rng, 0.05, 0.1) * s)}" ry="${f(uniform(rng, 0.05, 0.1) * s)}" fill="${hsl(rng, 105, 45, 30, 25, 20, 12)}"/>`;
    }
    return out;
  }
  if (kind === 1) {
    const y = uniform(rng, 0.82, 0.92) * s;
    return `<rect y="${f(y)}" width="${s}" height="${f(s - y)}" fill="${hsl(rng, 200, 55, 40, 15, 15, 10)}" opacity="0.9"/>`;
  }
  if (kind === 2) {
    const px = uniform(rng, 0.2, 0.8) * s;
    const half = uniform(rng, 0.2, 0.4) * s;
    const base = uniform(rng, 0.35, 0.55) * s;
    return `<polygon points="${f(px - half)},${f(base)} ${f(px)},${f(base - uniform(rng, 0.12, 0.25) * s)} ${f(px + half)},${f(base)}" fill="${hsl(rng, 230, 12, 60, 20, 10, 10)}" opacity="0.7"/>`;
  }
  const w = uniform(rng, 0.15, 0.25) * s;
  const top = uniform(rng, 0.3, 0.6) * s;
  return (
    `<rect x="${f(x0)}" y="${f(top)}" width="${f(w)}" height="${f(s - top)}" fill="${hsl(rng, 30, 15, 50, 15, 12, 15)}"/>` +
    windows(rng, x0, top, w, s - top, s)
  );
};

const PAINTERS: readonly Painter[] = [buildings, forest, glacier, mountain, sea, street];

/** SVG text of one synthetic scene of class `label`, fully determined by (seed, label, k). */
export function syntheticSceneSvg(label: number, seed: number, k: number, size = 150): string {
  const paint = PAINTERS[label];
  if (!paint) throw new RangeError(`synthetic scene class ${label} does not exist (0..${PAINTERS.length - 1})`);
  const rng = rngFor(seed, SCENE_STREAM, label, k);
  const body = paint(rng, size) + (rng() < 0.35 ? distractor(rng, size) : '');
  // shared nuisance: global brightness/tint, speckles and film-grain-like noise
  const tint = hsl(rng, uniform(rng, 0, 360), 50, 50, 0, 30, 20);
  let speckles = '';
  const nSpeckles = randInt(rng, 10, 40);
  for (let i = 0; i < nSpeckles; i++) {
    speckles += `<circle cx="${f(uniform(rng, 0, size))}" cy="${f(uniform(rng, 0, size))}" r="${f(uniform(rng, 0.5, 2.5))}" fill="${rng() < 0.5 ? 'black' : 'white'}" opacity="${f(uniform(rng, 0.1, 0.5))}"/>`;
  }
  const noiseSeed = randInt(rng, 1, 100000);
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="0 0 ${size} ${size}">` +
    `<defs><filter id="grain" x="0" y="0" width="100%" height="100%"><feTurbulence type="fractalNoise" baseFrequency="${f(uniform(rng, 0.5, 1.2))}" numOctaves="2" seed="${noiseSeed}"/>` +
    `<feColorMatrix type="saturate" values="0"/></filter></defs>` +
    `<rect width="${size}" height="${size}" fill="#808080"/>` +
    body +
    speckles +
    `<rect width="${size}" height="${size}" fill="${tint}" opacity="${f(uniform(rng, 0, 0.3))}"/>` +
    `<rect width="${size}" height="${size}" fill="${rng() < 0.5 ? 'black' : 'white'}" opacity="${f(uniform(rng, 0, 0.3))}"/>` +
    `<rect width="${size}" height="${size}" filter="url(#grain)" opacity="${f(uniform(rng, 0.1, 0.3))}"/>` +
    `</svg>`
  );
}

/** Renders one synthetic scene to JPEG bytes. */
export async function renderSyntheticScene(label: number, seed: number, k: number, size = 150, quality = 90): Promise<Buffer> {
  const svg = syntheticSceneSvg(label, seed, k, size);
  return sharp(Buffer.from(svg)).flatten({ background: '#808080' }).removeAlpha().jpeg({ quality, chromaSubsampling: '4:4:4' }).toBuffer();
}

/**
 * Writes a small synthetic scene data set in the competition layout: `train.csv` (image_name,label),
 * `test.csv` (image_name), `test_labels.csv` (image_name,label) and `SceneImages/<id>.jpg`, 6 procedural classes
 * (buildings, forest, glacier, mountain, sea, street) drawn as SVG and encoded to JPEG with sharp.
 * Image ids are shuffled so neither names nor row order give the class away. Deterministic by seed.
 */
export async function generateSyntheticScenes(dir: string, options: SyntheticScenesOptions = {}): Promise<SyntheticScenesResult> {
  const seed = options.seed ?? 0;
  const perClass = options.perClass ?? 60;
  const testPerClass = options.testPerClass ?? 15;
  const size = options.size ?? 150;
  const quality = options.quality ?? 90;
  const classes = SYNTHETIC_CLASS_NAMES.length;
  interface Item {
    label: number;
    k: number;
    test: boolean;
    id: number;
  }
  const items: Item[] = [];
  for (let label = 0; label < classes; label++) {
    for (let k = 0; k < perClass + testPerClass; k++) items.push({ label, k, test: k >= perClass, id: 0 });
  }
  const ids = shuffleInPlace(
    items.map((_, i) => i),
    rngFor(seed, SCENE_STREAM, 0x1d5),
  );
  items.forEach((it, i) => (it.id = ids[i] as number));
  const train = shuffleInPlace(
    items.filter((i) => !i.test),
    rngFor(seed, SCENE_STREAM, 0x7a1),
  );
  const test = items.filter((i) => i.test).sort((a, b) => a.id - b.id);

  const imagesDir = join(dir, 'SceneImages');
  mkdirSync(imagesDir, { recursive: true });
  const files = new Map<string, Buffer>();
  let done = 0;
  await pMap(
    [...train, ...test],
    async (it) => {
      const bytes = await renderSyntheticScene(it.label, seed, it.k, size, quality);
      files.set(`SceneImages/${it.id}.jpg`, bytes);
      writeFileSync(join(imagesDir, `${it.id}.jpg`), bytes);
      done++;
      options.onProgress?.(done, items.length);
    },
    { concurrency: options.concurrency ?? 4 },
  );
  const trainCsv = 'image_name,label\n' + train.map((i) => `${i.id}.jpg,${i.label}\n`).join('');
  const testCsv = 'image_name\n' + test.map((i) => `${i.id}.jpg\n`).join('');
  const testLabels = 'image_name,label\n' + test.map((i) => `${i.id}.jpg,${i.label}\n`).join('');
  for (const [name, text] of [
    ['train.csv', trainCsv],
    ['test.csv', testCsv],
    ['test_labels.csv', testLabels],
  ] as const) {
    writeFileSync(join(dir, name), text);
    files.set(name, Buffer.from(text));
  }
  const h = createHash('sha256');
  for (const name of [...files.keys()].sort()) {
    h.update(`${name}\n`);
    h.update(files.get(name) as Buffer);
  }
  return { dir, classNames: [...SYNTHETIC_CLASS_NAMES], train: train.length, test: test.length, hash: h.digest('hex') };
}
