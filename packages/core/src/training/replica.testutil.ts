import { parseRunConfig, type RunConfigInput } from '../config.js';
import type { Sample } from '../data/types.js';
import type { BatchSource } from './replica.js';

/** Test helpers: a tiny VGG config and synthetic pixels, so replica tests run in seconds on the cpu backend. */
export const S = 32;
/** Synthetic preprocessed images: a class-dependent colour tint plus a per-sample pattern. */
export const syntheticImages: BatchSource = {
  async loadBatch(samples) {
    const n = samples.length;
    const d = new Float32Array(n * S * S * 3);
    samples.forEach((s, i) => {
      for (let j = 0; j < S * S * 3; j++) {
        const tint = s.label === 0 ? 60 : s.label === 1 ? -60 : 0;
        d[i * S * S * 3 + j] = tint * ((j % 3) - 1) + Math.sin(s.index * 7 + j * 0.01) * 20;
      }
    });
    return { data: d, shape: [n, S, S, 3] };
  },
};

export function tinyConfig(extra: Partial<RunConfigInput> = {}) {
  return parseRunConfig({
    dataDir: '/nonexistent',
    classNames: ['a', 'b', 'c'],
    backbone: { kind: 'tiny-vgg', inputSize: [S, S], tinyWidths: [4, 4, 8, 8, 8] },
    head: { units: 16, dropout: 0.5 },
    ...extra,
  });
}

export function samplesOf(n: number, offset = 0): Sample[] {
  return Array.from({ length: n }, (_, k) => {
    const i = k + offset;
    return { split: 'labelled' as const, index: i, name: `img${i}.jpg`, path: `/nonexistent/img${i}.jpg`, label: i % 3 };
  });
}
