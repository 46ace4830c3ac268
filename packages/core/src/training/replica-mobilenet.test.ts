import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activateWasm } from '../backend/wasm.js';
import { parseRunConfig } from '../config.js';
import { ImageBatchLoader } from '../data/loader.js';
import { loadTrainedModel } from '../models/trained-model.js';
import { createReplica, type ModelReplica } from './replica.js';

/** The real pretrained MobileNetV2 on a handful of the real scene photos (wasm backend). */
const DATA = path.resolve('../shared/data/scenes');
const MOBILENET = path.resolve('../shared/models/mobilenet_v2');
let tmp: string;
let r: ModelReplica;
const warnings: string[] = [];

// the real model and photos live beside the repo (../shared, as on CI); without them these tests are skipped
const HAVE_SHARED = fs.existsSync(DATA) && fs.existsSync(MOBILENET);
if (!HAVE_SHARED) console.warn(`skipping the real-MobileNetV2 replica tests: ${DATA} or ${MOBILENET} is missing`);

beforeAll(async () => {
  if (!HAVE_SHARED) return;
  await activateWasm();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dptrain-mnet-'));
  const config = parseRunConfig({
    dataDir: DATA,
    backbone: { kind: 'layers', path: MOBILENET, cut: 'out_relu' },
    preprocess: 'unit',
    head: { units: 32 },
  });
  r = await createReplica(config, { cacheDir: path.join(tmp, 'cache'), onWarning: (m) => warnings.push(m) });
});
afterAll(() => {
  r?.dispose();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

function samples(n: number) {
  const ds = (r as unknown as { options: { dataset: { labelled: import('../data/types.js').Sample[] } } }).options.dataset;
  return ds.labelled.slice(0, n);
}

describe.skipIf(!HAVE_SHARED)('replica on the real MobileNetV2 (cut out_relu, unit preprocessing) with real photos', () => {
  it('reads classes from the data, input size from the model, and trains the head', async () => {
    expect(r.numClasses).toBe(6);
    expect(r.inputSize).toEqual([224, 224]);
    expect(warnings).toEqual([]);
    expect(r.spec[0]).toEqual({ name: 'head_dense/kernel', shape: [1280, 32], size: 1280 * 32 });
    const batch = samples(4);
    const g = await r.computeGradients(batch, { phase: 'head', epoch: 0, step: 0 });
    expect(g.count).toBe(4);
    expect(Number.isFinite(g.loss)).toBe(true);
    expect(g.gradients.every(Number.isFinite)).toBe(true);
    expect(g.gradients.some((v) => v !== 0)).toBe(true);
    const p = await r.predict(batch);
    expect(p.length).toBe(24);
    for (let i = 0; i < 4; i++) expect(p.subarray(i * 6, i * 6 + 6).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
  });

  it('phase 2 unfreezes block_10..out_relu (MobileNetV2’s measured default) from cached block_9_add features; BatchNorm stays in inference mode', async () => {
    await r.setPhase('fine_tune');
    // No unfreeze set (parseRunConfig applies the backbone-dependent defaults: none for a generic backbone): MobileNetV2
    // is recognised (MEASURED_UNFREEZE) and blocks 10-16 + Conv_1 train, with a warning that says so.
    expect(warnings.join('\n')).toMatch(/no --unfreeze given; phase 2 unfreezes 'block_10' \(MobileNetV2's default\) instead: the layers after block_9_add/);
    expect(r.split?.boundary).toBe('block_9_add');
    expect(r.spec.map((s) => s.name)).toContain('block_10_expand/kernel');
    expect(r.spec.map((s) => s.name)).not.toContain('block_9_expand/kernel');
    const names = r.spec.map((s) => s.name);
    expect(names).toContain('block_16_expand/kernel');
    expect(names).toContain('block_16_expand_BN/gamma');
    expect(names).not.toContain('block_16_expand_BN/moving_mean');
    const bn = r.model.getLayer('block_16_expand_BN');
    const meanBefore = Array.from(bn.getWeights()[2]!.dataSync());
    const batch = samples(4);
    const w = r.getWeights();
    const g = await r.computeGradients(batch, { phase: 'fine_tune', epoch: 0, step: 1 });
    const gamma = names.indexOf('block_16_expand_BN/gamma');
    const off = r.spec.slice(0, gamma).reduce((a, s) => a + s.size, 0);
    expect(g.gradients.subarray(off, off + r.spec[gamma]!.size).some((v) => v !== 0)).toBe(true);
    r.setWeights(w.map((v, i) => v - 1e-3 * g.gradients[i]!));
    expect(Array.from(bn.getWeights()[2]!.dataSync())).toEqual(meanBefore);
    expect(r.cacheStats!.misses).toBeGreaterThan(0);
  });

  it('saves backbone + head as one tfjs layers model with metadata; loadTrainedModel predicts the same', async () => {
    const dir = path.join(tmp, 'model');
    await r.save(dir);
    const m = await loadTrainedModel(dir);
    expect(m.metadata).toMatchObject({ classNames: ['0', '1', '2', '3', '4', '5'], preprocess: 'unit', inputSize: [224, 224], cut: 'out_relu' });
    const batch = samples(3);
    const pix = await new ImageBatchLoader({ inputSize: [224, 224], preprocess: 'unit' }).loadBatch(batch);
    const loaded = m.predictPixels(pix.data, 3);
    const direct = await r.predict(batch);
    expect(loaded.length).toBe(18);
    for (let i = 0; i < 18; i++) expect(loaded[i]!).toBeCloseTo(direct[i]!, 4);
    const before = tf.memory().numTensors;
    m.dispose();
    expect(tf.memory().numTensors).toBeLessThan(before);
  });
});
