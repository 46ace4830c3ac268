// `npx tsx bench/device-step.bench.ts [--backend native] [--backbone tiny-vgg|vgg16] [--size 64] [--batch 32]
//   [--micro-batch 8] [--steps 3]` (also part of `npm run bench`, quick settings)
// The step with the host merge (today's CPU-backend default) and with the device step (the tensorflow backends'
// default): bytes that cross host<->device per step, reads per step and step time, for each phase, from cached
// features (the steady state of a run with the feature cache).
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import {
  computeTreeGradients,
  createReplica,
  parseRunConfig,
  preprocessPixels,
  resolveBackend,
  type BackendName,
  type BatchSource,
  type Sample,
} from '@dptrain/core';

export interface DeviceStepBenchOptions {
  /** Default: the first of native, wasm that loads. */
  backend?: BackendName;
  /** Default 'tiny-vgg'. */
  backbone?: 'tiny-vgg' | 'vgg16';
  /** Input side in pixels. Default 64. */
  size?: number;
  /** Default 32. */
  batch?: number;
  /** Default 8. */
  microBatch?: number;
  /** Timed steps per path and phase (after one that fills the caches). Default 3. */
  steps?: number;
  log?: (line: string) => void;
}

export interface DeviceStepBenchRow {
  path: 'host' | 'device';
  phase: 'head' | 'fine_tune';
  uploadBytesPerStep: number;
  downloadBytesPerStep: number;
  readsPerStep: number;
  stepMs: number;
}

function pixels(size: number): BatchSource {
  const bytesOf = (s: Sample) => Uint8Array.from({ length: size * size * 3 }, (_, j) => (s.label * 70 + ((j * 31 + s.index * 17) % 97)) & 255);
  return {
    async loadBatch(samples) {
      const d = new Float32Array(samples.length * size * size * 3);
      samples.forEach((s, i) => d.set(preprocessPixels(bytesOf(s), 'caffe'), i * size * size * 3));
      return { data: d, shape: [samples.length, size, size, 3] };
    },
    async loadRawBatch(samples) {
      const d = new Uint8Array(samples.length * size * size * 3);
      samples.forEach((s, i) => d.set(bytesOf(s), i * size * size * 3));
      return { data: d, shape: [samples.length, size, size, 3] };
    },
  };
}

export async function benchDeviceStep(o: DeviceStepBenchOptions = {}): Promise<{ backend: string; rows: DeviceStepBenchRow[] }> {
  const log = o.log ?? console.log;
  const info = o.backend
    ? await resolveBackend({ backend: o.backend })
    : await resolveBackend({ backend: 'native' }).catch(() => resolveBackend({ backend: 'wasm' }));
  const size = o.size ?? 64;
  const batch = o.batch ?? 32;
  const micro = o.microBatch ?? 8;
  const steps = o.steps ?? 3;
  const config = parseRunConfig({
    dataDir: '/nonexistent',
    classNames: ['a', 'b', 'c', 'd', 'e', 'f'],
    backbone: o.backbone === 'vgg16' ? { kind: 'vgg16', inputSize: [size, size] } : { kind: 'tiny-vgg', inputSize: [size, size] },
    head: { units: 256, dropout: 0.5 },
    batchSize: batch,
    microBatch: micro,
  });
  const samples: Sample[] = Array.from({ length: batch }, (_, i) => ({ split: 'labelled', index: i, name: `${i}.jpg`, path: `/x/${i}.jpg`, label: i % 6 }));
  const rows: DeviceStepBenchRow[] = [];
  for (const path of ['host', 'device'] as const) {
    const r = await createReplica(config, { images: pixels(size), deviceStep: path === 'device', onWarning: () => undefined });
    for (const phase of ['head', 'fine_tune'] as const) {
      await r.setPhase(phase);
      await computeTreeGradients(r, samples, { phase, epoch: 0, step: 0 }, micro); // fills the caches
      r.transfers.take();
      const t0 = performance.now();
      for (let s = 1; s <= steps; s++) await computeTreeGradients(r, samples, { phase, epoch: 0, step: s }, micro);
      const ms = (performance.now() - t0) / steps;
      const t = r.transfers.take();
      const row = {
        path,
        phase,
        uploadBytesPerStep: t.uploadBytes / steps,
        downloadBytesPerStep: t.downloadBytes / steps,
        readsPerStep: t.downloads / steps,
        stepMs: ms,
      };
      rows.push(row);
      const mb = (b: number) => `${(b / 1e6).toFixed(3)} MB`;
      log(
        `${info.name} ${path.padEnd(6)} ${phase.padEnd(9)} up ${mb(row.uploadBytesPerStep)}/step, down ${mb(row.downloadBytesPerStep)}/step, ${row.readsPerStep} reads/step, ${ms.toFixed(1)} ms/step`,
      );
    }
    r.dispose();
  }
  return { backend: info.name, rows };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values: a } = parseArgs({
    options: {
      backend: { type: 'string' },
      backbone: { type: 'string' },
      size: { type: 'string' },
      batch: { type: 'string' },
      'micro-batch': { type: 'string' },
      steps: { type: 'string' },
    },
  });
  await benchDeviceStep({
    ...(a.backend ? { backend: a.backend as BackendName } : {}),
    ...(a.backbone ? { backbone: a.backbone as 'vgg16' } : {}),
    ...(a.size ? { size: Number(a.size) } : {}),
    ...(a.batch ? { batch: Number(a.batch) } : {}),
    ...(a['micro-batch'] ? { microBatch: Number(a['micro-batch']) } : {}),
    ...(a.steps ? { steps: Number(a.steps) } : {}),
  });
}
