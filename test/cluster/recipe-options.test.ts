// The recipe's options keep the cluster's bit-for-bit equivalence: `dptrain single` with 1 and 2 real worker
// processes, with AdamW + weight decay, warmup + cosine, label smoothing, balanced class weights and cached
// augmented views all on, ends with the same trainable weights, byte for byte (the optimizer and schedule run on
// the coordinator; smoothing and class weights are per-sample changes merged along the same micro-batch tree; the
// view of each image is a function of (seed, epoch, image), whichever worker computes it).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { generateSyntheticScenes } from '@dptrain/core';
import { tinyRunFlags } from '../helpers/cli.testutil.js';
import { processesMentioning } from '../helpers/processes.testutil.js';

const run = promisify(execFile);
const root = path.resolve(__dirname, '../..');
const bin = path.join(root, 'packages/cli/bin/dptrain.js');

describe.skipIf(process.platform !== 'linux')('recipe options across worker counts', () => {
  it('1 and 2 workers train the same bytes with adamw, warmup + cosine, label smoothing, class weights and augmentation views', async () => {
    const base = mkdtempSync(path.join(tmpdir(), 'dpt-recipe-opts-'));
    const dataDir = path.join(base, 'data');
    await generateSyntheticScenes(dataDir, { seed: 11, perClass: 5, testPerClass: 1, size: 48 });
    const common = [
      'single',
      ...tinyRunFlags(dataDir, { epochs: 2 }),
      '--micro-batch',
      '2',
      '--optimizer',
      'adamw',
      '--weight-decay',
      '0.01',
      '--lr-schedule',
      'cosine',
      '--warmup-epochs',
      '1',
      '--label-smoothing',
      '0.1',
      '--class-weight',
      'auto',
      '--augment',
      '--augment-views',
      '2',
      '--backend',
      'wasm',
      '--plain',
    ];
    const trained: Buffer[] = [];
    for (const n of [1, 2]) {
      const out = path.join(base, `run${n}`);
      await run(process.execPath, [bin, ...common, '--workers', String(n), '--out', out], { cwd: root, timeout: 240_000, maxBuffer: 16 * 1024 * 1024 });
      trained.push(readFileSync(path.join(out, 'model', 'trainable.bin')));
      const cfg = parseYaml(readFileSync(path.join(out, 'config.yaml'), 'utf8')) as {
        classWeight: unknown;
        optimizer: string;
        cachedViews: number;
        augmentation: { horizontalFlip: boolean };
      };
      expect(cfg.optimizer).toBe('adamw');
      expect(cfg.cachedViews).toBe(2);
      expect(cfg.augmentation.horizontalFlip).toBe(true);
      expect(Array.isArray(cfg.classWeight) && cfg.classWeight.length === 6).toBe(true);
    }
    expect(trained[0]!.length).toBeGreaterThan(0);
    expect(trained[1]!.equals(trained[0]!)).toBe(true);
    expect(processesMentioning(base)).toEqual([]);
  }, 400_000);
});
