import { afterAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import {
  computeTreeGradients,
  createReplica,
  deviceStepDefault,
  preprocessPixels,
  resolveBackend,
  type BackendName,
  type BatchSource,
  type ModelReplica,
  type PreprocessMode,
  type Sample,
} from '@dptrain/core';
import { samplesOf, tinyConfig, S } from '../../packages/core/src/training/replica.testutil.js';
import { packBytes, preprocessOnDevice, unpackBytes } from '../../packages/core/src/training/device-preprocess.js';

/**
 * The device step against today's host merge, on the CPU backends (where it runs only when switched on): the same
 * replica weights, samples and tree give gradients, loss and correct counts equal within fp32 rounding. Stated
 * tolerance: every gradient element within 1e-5 of the largest |gradient| (device ops round at each op: a mul and an
 * add per tree level, a division and a subtraction in preprocessing), loss within 1e-5 relative, correct counts
 * equal (measured: at most 1.3e-6 on each backend).
 */
const RTOL = 1e-5;

/** Deterministic RGB bytes per sample; floats = the host preprocessing of the same bytes. */
function pixelSource(mode: PreprocessMode): BatchSource {
  const bytesOf = (s: Sample): Uint8Array => {
    const b = new Uint8Array(S * S * 3);
    for (let j = 0; j < b.length; j++) b[j] = (s.label * 70 + ((j * 31 + s.index * 17) % 97) + (j % 3) * 40) & 255;
    return b;
  };
  return {
    async loadBatch(samples) {
      const d = new Float32Array(samples.length * S * S * 3);
      samples.forEach((s, i) => d.set(preprocessPixels(bytesOf(s), mode), i * S * S * 3));
      return { data: d, shape: [samples.length, S, S, 3] };
    },
    async loadRawBatch(samples) {
      const d = new Uint8Array(samples.length * S * S * 3);
      samples.forEach((s, i) => d.set(bytesOf(s), i * S * S * 3));
      return { data: d, shape: [samples.length, S, S, 3] };
    },
  };
}

function maxRelativeError(got: Float32Array, want: Float32Array): number {
  let scale = 0;
  for (const v of want) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / scale);
  return worst;
}

async function pair(mode: PreprocessMode): Promise<[ModelReplica, ModelReplica]> {
  const config = tinyConfig({ preprocess: mode, fineTunePhase: { epochs: 1, learningRate: 1e-5, unfreeze: 'block5' } });
  const make = (deviceStep: boolean) => createReplica(config, { images: pixelSource(mode), deviceStep, cacheFp16: false, onWarning: () => undefined });
  return [await make(false), await make(true)];
}

const created: ModelReplica[] = [];
afterAll(() => {
  for (const r of created) r.dispose();
});

const backends: BackendName[] = ['native', 'wasm', 'cpu'];

describe.each(backends)('device step on %s equals the host merge within fp32 tolerance', (name) => {
  it('gradients, loss and correct over 3 steps of 12 samples in 3 micro-batches, both phases, and predictions', async (t) => {
    try {
      await resolveBackend({ backend: name, log: () => undefined });
    } catch (e) {
      if (name === 'native') return t.skip(`native backend unavailable here: ${(e as Error).message.split('\n')[0]}`);
      throw e;
    }
    const [host, device] = await pair('caffe');
    created.push(host, device);
    expect([host.deviceStep, device.deviceStep]).toEqual([false, true]);
    const samples = samplesOf(12);
    let worst = 0;
    let tensorsAfterFirst = -1;
    for (const phase of ['head', 'fine_tune'] as const) {
      await host.setPhase(phase);
      await device.setPhase(phase);
      device.setWeights(host.getWeights());
      for (let step = 0; step < 3; step++) {
        const ctx = { phase, epoch: 0, step };
        host.transfers.take();
        device.transfers.take();
        const a = await computeTreeGradients(host, samples, ctx, 4);
        const hostT = host.transfers.take();
        const b = await computeTreeGradients(device, samples, ctx, 4);
        const devT = device.transfers.take();
        expect(b.count).toBe(a.count);
        expect(b.correct).toBe(a.correct);
        expect(Math.abs(b.loss - a.loss) / Math.abs(a.loss)).toBeLessThanOrEqual(RTOL);
        worst = Math.max(worst, maxRelativeError(b.gradients, a.gradients));
        // one read per step on the device path (3 per micro-batch on the host path)
        expect(devT.downloads).toBe(1);
        expect(hostT.downloads).toBeGreaterThanOrEqual(3 * 3);
        expect(devT.downloadBytes).toBeLessThan(hostT.downloadBytes);
        if (phase === 'head' && step === 0) {
          // the first step ran the frozen part: pixels went up as 4 bytes per pixel (a third of the host path's floats)
          expect(devT.uploadBytes).toBeLessThan(hostT.uploadBytes / 2.5);
          tensorsAfterFirst = tf.memory().numTensors;
        }
        if (phase === 'head' && step === 2) expect(tf.memory().numTensors).toBe(tensorsAfterFirst); // no leak per step
      }
    }
    console.log(`device step on ${name}: worst gradient error ${worst.toExponential(2)} of the largest |gradient|`);
    expect(worst).toBeLessThanOrEqual(RTOL);
    // features for phase 2 came from the device cache (filled by the head phase's frozen pass)
    expect(device.deviceCacheStats!.entries).toBeGreaterThan(0);
    const [ph, pd] = [await host.predict(samples), await device.predict(samples)];
    expect(maxRelativeError(pd, ph)).toBeLessThanOrEqual(RTOL);
  });
});

describe('device feature cache bound', () => {
  it('rows past the bound go to the host cache; the step reads them back from there with the same result', async () => {
    await resolveBackend({ backend: 'cpu', log: () => undefined });
    const config = tinyConfig({ preprocess: 'tf' });
    const mk = (deviceStep: boolean, deviceCacheBytes?: number) =>
      createReplica(config, {
        images: pixelSource('tf'),
        deviceStep,
        cacheFp16: false,
        onWarning: () => undefined,
        ...(deviceCacheBytes ? { deviceCacheBytes } : {}),
      });
    const host = await mk(false);
    const device = await mk(true, 2000); // room for a few rows of the tiny backbone's features, not 24
    created.push(host, device);
    const samples = samplesOf(24);
    for (let step = 0; step < 2; step++) {
      const ctx = { phase: 'head' as const, epoch: 0, step };
      const [a, b] = [await computeTreeGradients(host, samples, ctx, 8), await computeTreeGradients(device, samples, ctx, 8)];
      expect(maxRelativeError(b.gradients, a.gradients)).toBeLessThanOrEqual(RTOL);
    }
    const stats = device.deviceCacheStats!;
    expect(stats.bytes).toBeLessThanOrEqual(2000);
    expect(stats.refused).toBeGreaterThan(0);
    expect(stats.entries).toBeGreaterThan(0);
    expect(device.cacheStats!.memoryEntries).toBeGreaterThan(0); // the host fallback holds the rest
  });
});

describe('device step pieces', () => {
  it.each(['wasm', 'cpu'] as const)('on %s, bytes packed 3 to an int32 come back exactly; device preprocessing matches the host', async (name) => {
    await resolveBackend({ backend: name, log: () => undefined });
    const bytes = Uint8Array.from({ length: 3 * 5 * 7 + 2 }, (_, i) => (i * 73 + 200) & 255); // not a multiple of 3; bytes >= 128
    const back = tf.tidy(() => unpackBytes(tf.tensor1d(packBytes(bytes), 'int32'), bytes.length).dataSync());
    expect(Array.from(back)).toEqual(Array.from(bytes));
    for (const mode of ['caffe', 'tf', 'unit'] as const) {
      const px = bytes.subarray(0, 3 * 5 * 7);
      const dev = tf.tidy(() => preprocessOnDevice(tf.tensor4d(Float32Array.from(px), [1, 5, 7, 3]), mode).dataSync());
      const host = preprocessPixels(px, mode);
      for (let i = 0; i < host.length; i++) expect(Math.abs(dev[i]! - host[i]!), `${mode} ${i}`).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(host[i]!)));
    }
  });
  it('is on by default on the tensorflow backends, off on the CPU ones; DPTRAIN_DEVICE_STEP overrides', () => {
    const info = (n: BackendName) => ({ name: n, tfBackend: n, device: '', tried: [] });
    expect(deviceStepDefault(info('tensorflow-gpu'), {})).toBe(true);
    expect(deviceStepDefault(info('tensorflow'), {})).toBe(true);
    for (const n of ['native', 'wasm', 'cpu'] as const) expect(deviceStepDefault(info(n), {})).toBe(false);
    expect(deviceStepDefault(info('cpu'), { DPTRAIN_DEVICE_STEP: '1' })).toBe(true);
    expect(deviceStepDefault(info('tensorflow-gpu'), { DPTRAIN_DEVICE_STEP: '0' })).toBe(false);
  });
});
