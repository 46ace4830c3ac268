// `dptrain export --format keras-h5`: a trained run (real CLI processes, tiny synthetic data) written as a Keras
// HDF5 model, read back with the project's own reader and with h5py, against the run's tfjs layers model.
import { createHash } from 'node:crypto';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateSyntheticScenes, loadTrainedModel, readKerasH5 } from '@dptrain/core';
import { tinyRunFlags } from '../helpers/cli.testutil.js';

const run = promisify(execFile);
const root = path.resolve(__dirname, '../..');
const bin = path.join(root, 'packages/cli/bin/dptrain.js');
// h5py: Debian's python3-h5py (which .ci/run installs) lives under /usr/bin/python3, which another python3 on PATH may hide
const python = ['python3', '/usr/bin/python3'].find((p) => spawnSync(p, ['-c', 'import h5py']).status === 0);

async function dptrain(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [bin, ...args], { cwd: root, timeout: 240_000, maxBuffer: 16 * 1024 * 1024 });
}

const sha256 = (a: Float32Array): string =>
  createHash('sha256')
    .update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength))
    .digest('hex');

interface H5pyDump {
  kerasVersion: string;
  backend: string;
  modelConfig: { class_name: string; config: { layers: { class_name: string; name: string }[] } };
  layers: { name: string; weights: { name: string; shape: number[]; sha256: string }[] }[];
}

describe('dptrain export --format keras-h5', () => {
  let runDir = '';
  let out = '';
  let expected: { name: string; weights: { name: string; shape: number[]; sha256: string }[] }[] = [];
  let layerClasses: string[] = [];

  beforeAll(async () => {
    await tf.setBackend('cpu');
    const base = mkdtempSync(path.join(tmpdir(), 'dpt-export-'));
    const dataDir = path.join(base, 'data');
    runDir = path.join(base, 'run');
    out = path.join(base, 'model.h5');
    await generateSyntheticScenes(dataDir, { seed: 5, perClass: 4, testPerClass: 1, size: 48 });
    await dptrain(['train', ...tinyRunFlags(dataDir, { backend: 'wasm' }), '--out', runDir]);
    const { stdout } = await dptrain(['export', '--model', runDir, '--format', 'keras-h5', '--out', out, '--backend', 'wasm']);
    expect(stdout).toMatch(/wrote .*model\.h5: \d+ layers, \d+ weights/);
    const m = await loadTrainedModel(path.join(runDir, 'model'));
    expected = m.model.layers.map((l) => ({
      name: l.name,
      weights: l.weights.map((v) => ({ name: `${v.originalName}:0`, shape: [...v.shape] as number[], sha256: sha256(v.read().dataSync() as Float32Array) })),
    }));
    layerClasses = m.model.layers.map((l) => l.getClassName());
    m.dispose();
  }, 300_000);

  it("the project's own .h5 reader finds every weight of the trained model under Keras' names", async () => {
    const layers = await readKerasH5(out);
    expect([...layers.keys()]).toEqual(expected.map((l) => l.name));
    for (const l of expected) {
      const got = layers.get(l.name)!;
      expect(got.map((w) => w.name)).toEqual(l.weights.map((w) => w.name));
      expect(got.map((w) => sha256(w.values))).toEqual(l.weights.map((w) => w.sha256));
    }
    // the fine-tuned block and the head are there (the parts a run trains)
    expect(layers.has('head_logits')).toBe(true);
    expect(layers.has('block5_conv3')).toBe(true);
  });

  it.skipIf(python === undefined)('h5py reads the model config, layer names and the same weight values', () => {
    const r = spawnSync(python!, [path.join(root, 'test/training/read_keras_h5.py'), out], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    expect(r.status, r.stderr).toBe(0);
    const dump = JSON.parse(r.stdout) as H5pyDump;
    expect(dump.backend).toBe('tensorflow');
    expect(dump.modelConfig.class_name).toBe('Model');
    expect(dump.modelConfig.config.layers.map((l) => l.name)).toEqual(expected.map((l) => l.name));
    expect(dump.modelConfig.config.layers.map((l) => l.class_name)).toEqual(layerClasses);
    expect(dump.layers).toEqual(expected);
  });

  it('a run without model.json (as a cluster run saves it) exports the same weights, rebuilt from config + trainable weights', async () => {
    const modelDir = path.join(runDir, 'model');
    renameSync(path.join(modelDir, 'model.json'), path.join(modelDir, 'model.json.off'));
    try {
      const rebuilt = path.join(path.dirname(out), 'rebuilt.h5');
      await dptrain(['export', '--model', runDir, '--out', rebuilt, '--backend', 'wasm']);
      const layers = await readKerasH5(rebuilt);
      expect([...layers.keys()]).toEqual(expected.map((l) => l.name));
      for (const l of expected) expect(layers.get(l.name)!.map((w) => sha256(w.values))).toEqual(l.weights.map((w) => w.sha256));
    } finally {
      renameSync(path.join(modelDir, 'model.json.off'), path.join(modelDir, 'model.json'));
    }
  });

  it('refuses an unknown format by name', async () => {
    await expect(dptrain(['export', '--model', runDir, '--format', 'onnx', '--out', out])).rejects.toThrow(/--format.*onnx|onnx.*keras-h5/);
  });
});
