/**
 * `dptrain train --backbone PATH` with Keras-application-shaped tfjs layers models saved to disk, as a user would:
 * the InceptionV3 shape (BatchNorm scale=False, pooling in concatenated branches; cached features) and the
 * EfficientNetB0 shape (squeeze-and-excitation, swish; --no-cache) train through both phases and predict.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSyntheticScenes, scoreSubmission } from '@dptrain/core';
import { fileSystemHandler } from '../../packages/core/src/models/fs-io.js';
import { buildKerasShape, type KerasShape } from '../../packages/core/src/models/keras-shapes.testutil.js';
import { processesMentioning } from '../helpers/processes.testutil.js';

const run = promisify(execFile);
const root = path.resolve(__dirname, '../..');
const bin = path.join(root, 'packages/cli/bin/dptrain.js');

async function dptrain(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [bin, ...args], { cwd: root, timeout: 240_000, maxBuffer: 16 * 1024 * 1024 });
}

let base = '';
let dataDir = '';
beforeAll(async () => {
  base = mkdtempSync(path.join(tmpdir(), 'dpt-cli-bb-'));
  dataDir = path.join(base, 'data');
  await generateSyntheticScenes(dataDir, { seed: 5, perClass: 6, testPerClass: 2, size: 48 });
  await tf.setBackend('cpu');
  for (const shape of ['inception_v3', 'efficientnet_b0'] as KerasShape[]) {
    const m = buildKerasShape(shape, { size: 32 });
    await m.save(fileSystemHandler(path.join(base, shape)));
    m.dispose();
  }
});
afterAll(() => {
  if (base) rmSync(base, { recursive: true, force: true });
});

describe('dptrain train --backbone PATH with Keras-shaped models (real CLI processes)', () => {
  for (const [shape, extra] of [
    ['inception_v3', []],
    ['efficientnet_b0', ['--no-cache']],
  ] as const) {
    it(`${shape}${extra.length ? ` (${extra.join(' ')})` : ''}: both phases, then predict`, async () => {
      const runDir = path.join(base, `run-${shape}`);
      const { stdout, stderr } = await dptrain([
        'train',
        '--data',
        dataDir,
        '--backbone',
        path.join(base, shape),
        '--epochs',
        '1',
        '--fine-tune-epochs',
        '1',
        '--batch-size',
        '8',
        '--head-units',
        '16',
        '--backend',
        'wasm',
        '--out',
        runDir,
        ...extra,
      ]);
      const out = stdout + stderr;
      expect(out).toMatch(/head epoch 1\/\d+ done/);
      expect(out).toMatch(/fine-tune epoch 1\/\d+ done/);
      expect(out).toMatch(/no --unfreeze given; phase 2 unfreezes 'top:50%' instead: the layers after \S+ up to \S+, \d+ of \d+ backbone weights/);
      const score = scoreSubmission(path.join(runDir, 'submission.csv'), path.join(dataDir, 'test_labels.csv'));
      expect(score.missing).toEqual([]);
      expect(score.scored).toBe(12);
      const pred = path.join(base, `pred-${shape}.csv`);
      await dptrain(['predict', '--model', runDir, '--data', dataDir, '--out', pred, '--backend', 'wasm']);
      expect(existsSync(pred)).toBe(true);
      expect(readFileSync(pred, 'utf8')).toBe(readFileSync(path.join(runDir, 'submission.csv'), 'utf8'));
      expect(processesMentioning(runDir)).toEqual([]);
    });
  }
});
