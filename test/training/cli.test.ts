import { describe, expect, it, beforeAll } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { generateSyntheticScenes, scoreSubmission } from '@dptrain/core';
import { buildProgram } from '../../packages/cli/src/main.js';
import { samplesForImages } from '../../packages/cli/src/commands/predict.js';
import { tinyRunFlags } from '../helpers/cli.testutil.js';

const run = promisify(execFile);
const root = path.resolve(__dirname, '../..');
const bin = path.join(root, 'packages/cli/bin/dptrain.js');

async function dptrain(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [bin, ...args], { cwd: root, timeout: 240_000, maxBuffer: 16 * 1024 * 1024 });
}

describe('dptrain train / predict (real CLI processes, tiny synthetic data)', () => {
  let dataDir = '';
  let runDir = '';
  beforeAll(async () => {
    const base = mkdtempSync(path.join(tmpdir(), 'dpt-cli-'));
    dataDir = path.join(base, 'data');
    runDir = path.join(base, 'run');
    await generateSyntheticScenes(dataDir, { seed: 3, perClass: 6, testPerClass: 2, size: 64 });
  });

  it('train runs the whole recipe and writes model, metrics.jsonl, report.json and a complete submission.csv', async () => {
    const { stdout } = await dptrain([
      'train',
      ...tinyRunFlags(dataDir, { pooling: 'flatten', epochs: 2 }),
      '--checkpoint-every',
      '3',
      '--backend',
      'wasm',
      '--out',
      runDir,
    ]);
    expect(stdout).toMatch(/backend wasm/);
    expect(stdout).toMatch(/head epoch 2\/\d+ done/);
    expect(stdout).toMatch(/fine-tune epoch 1\/\d+ done/);
    expect(stdout).toMatch(/validation: +accuracy/);
    for (const f of ['model/model.json', 'model/weights.bin', 'model/dptrain-model.json', 'model/trainable.bin', 'checkpoint.bin']) {
      expect(existsSync(path.join(runDir, f)), f).toBe(true);
    }
    const lines = readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n');
    expect(lines).toHaveLength(3);
    const report = JSON.parse(readFileSync(path.join(runDir, 'report.json'), 'utf8')) as {
      backend: string;
      validation: { confusion: number[][]; perClass: { name: string }[] };
      samples: { validation: number };
      timingsMs: { total: number };
    };
    expect(report.backend).toBe('wasm');
    expect(report.validation.confusion.flat().reduce((a, b) => a + b, 0)).toBe(report.samples.validation);
    expect(report.validation.perClass).toHaveLength(6);
    expect(report.timingsMs.total).toBeGreaterThan(0);
    const testNames = readFileSync(path.join(dataDir, 'test.csv'), 'utf8').trim().split('\n').slice(1);
    const sub = readFileSync(path.join(runDir, 'submission.csv'), 'utf8').trim().split('\n');
    expect(sub[0]).toBe('image_name,label');
    expect(sub.slice(1).map((l) => l.split(',')[0])).toEqual(testNames);
    const score = scoreSubmission(path.join(runDir, 'submission.csv'), path.join(dataDir, 'test_labels.csv'));
    expect(score.missing).toEqual([]);
    expect(score.scored).toBe(12);
  });

  it('predict --data writes the same submission; predict IMAGE prints class and probability', async () => {
    const out = path.join(path.dirname(runDir), 'pred.csv');
    await dptrain(['predict', '--model', runDir, '--data', dataDir, '--out', out, '--backend', 'wasm']);
    expect(readFileSync(out, 'utf8')).toBe(readFileSync(path.join(runDir, 'submission.csv'), 'utf8'));
    const first = readFileSync(path.join(dataDir, 'test.csv'), 'utf8').trim().split('\n')[1] as string;
    const img = path.join(dataDir, 'SceneImages', first);
    const { stdout } = await dptrain(['predict', '--model', runDir, '--backend', 'wasm', img]);
    const [file, cls, prob] = stdout.trim().split('\n').at(-1)!.split('\t');
    expect(file).toBe(img);
    const expected = readFileSync(out, 'utf8').trim().split('\n')[1]!.split(',')[1];
    expect(cls).toBe(expected);
    expect(Number(prob)).toBeGreaterThan(1 / 6 - 1e-6);
    expect(Number(prob)).toBeLessThanOrEqual(1);
  });

  it('predict names a missing image with a stable error code', () => {
    expect(() => samplesForImages(['/nonexistent.jpg'])).toThrow(
      expect.objectContaining({ code: 'E_DATA_IMAGE', message: expect.stringMatching(/nonexistent/) }),
    );
  });

  it('--help describes train, predict and demo', () => {
    const program = buildProgram();
    const help = (name: string): string => program.commands.find((c) => c.name() === name)!.helpInformation();
    for (const flag of ['--data <dir>', '--out <dir>', '--backend <name>', '--epochs <n>', '--backbone', '--resume']) expect(help('train')).toContain(flag);
    expect(help('predict')).toMatch(/--model <run_dir>[\s\S]*--data <dir>[\s\S]*images/);
    expect(help('demo')).toMatch(/synthetic/);
  });
});
