// --config FILE (YAML or JSON), flags on top, RUN/config.yaml and --print-config: in process for the resolution
// rules, and through the real CLI for "train --config RUN/config.yaml reproduces the run".
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { generateSyntheticScenes, isDptrainError, parseRunConfig } from '@dptrain/core';
import { addTrainingFlags, toRunConfig, type TrainingFlagValues } from '../../packages/cli/src/training-flags.js';
import { tinyRunFlags } from '../helpers/cli.testutil.js';

const run = promisify(execFile);
const root = path.resolve(__dirname, '../..');
const bin = path.join(root, 'packages/cli/bin/dptrain.js');
const dptrain = (args: string[]) => run(process.execPath, [bin, ...args], { cwd: root, timeout: 240_000, maxBuffer: 16 * 1024 * 1024 });

function configOf(args: string[]) {
  const cmd = addTrainingFlags(new Command('train').exitOverride());
  cmd.parse(args, { from: 'user' });
  return toRunConfig(cmd.opts() as TrainingFlagValues);
}

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return isDptrainError(e) ? `${e.code}: ${e.message}` : `not coded: ${String(e)}`;
  }
  return 'no error';
}

describe('run config resolution', () => {
  it('the flags alone give the documented defaults, backbone-dependent ones included', () => {
    const vgg = configOf(['--data', '/d']);
    expect(vgg).toMatchObject({
      preprocess: 'caffe',
      batchSize: 32,
      microBatch: 8,
      seed: 42,
      headPhase: { epochs: 10, learningRate: 1e-3 },
      fineTunePhase: { epochs: 5, learningRate: 1e-5, unfreeze: 'block5' },
    });
    expect(vgg.cacheFeatures).toBe(true);
    const mnv2 = configOf(['--data', '/d', '--backbone', '/models/mnv2']);
    expect(mnv2.backbone).toMatchObject({ kind: 'layers', path: '/models/mnv2' });
    expect(mnv2.preprocess).toBe('unit');
    expect(mnv2.fineTunePhase.learningRate).toBe(1e-4);
    expect(mnv2.fineTunePhase.unfreeze).toBeUndefined();
    // chosen on MobileNetV2's validation split (docs/training.md): label smoothing, cosine with 1 warmup epoch; no
    // augmentation (3 cached views once --augment is given)
    expect(mnv2).toMatchObject({ labelSmoothing: 0.1, lrSchedule: 'cosine', warmupEpochs: 1, cachedViews: 3, fineTunePhase: { epochs: 10 } });
    const none = { rotationRange: 0, widthShiftRange: 0, heightShiftRange: 0, shearRange: 0, zoomRange: 0, horizontalFlip: false };
    expect(mnv2.augmentation).toMatchObject(none);
    expect(vgg).toMatchObject({ labelSmoothing: 0, lrSchedule: 'plateau', warmupEpochs: 0 });
    expect(vgg.augmentation).toMatchObject(none);
    // each is still the caller's to set
    expect(
      configOf(['--data', '/d', '--backbone', '/m', '--label-smoothing', '0', '--lr-schedule', 'plateau', '--warmup-epochs', '0', '--augment']),
    ).toMatchObject({
      labelSmoothing: 0,
      lrSchedule: 'plateau',
      warmupEpochs: 0,
      augmentation: { rotationRange: 20, zoomRange: 0.1, horizontalFlip: true },
    });
    // a single range given replaces that range of the preset or of the default
    expect(configOf(['--data', '/d', '--backbone', '/m', '--augment', '--zoom-range', '0.2']).augmentation).toMatchObject({
      rotationRange: 20,
      zoomRange: 0.2,
      horizontalFlip: true,
    });
    expect(configOf(['--data', '/d', '--backbone', '/m', '--zoom-range', '0.2']).augmentation).toMatchObject({ ...none, zoomRange: 0.2 });
    expect(configOf(['--data', '/d', '--no-cache', '--augment']).augmentation).toMatchObject({ rotationRange: 20, zoomRange: 0.1, horizontalFlip: true });
  });

  it('a library caller of parseRunConfig gets the same backbone-dependent defaults as the CLI', () => {
    const mnv2 = parseRunConfig({ dataDir: '/d', backbone: { kind: 'layers', path: '/models/mnv2' } });
    expect(mnv2).toMatchObject({ preprocess: 'unit', headPhase: { epochs: 10, learningRate: 1e-3 }, fineTunePhase: { epochs: 10, learningRate: 1e-4 } });
    expect(mnv2).toMatchObject({ labelSmoothing: 0.1, lrSchedule: 'cosine', warmupEpochs: 1, augmentation: { rotationRange: 0, horizontalFlip: false } });
    expect(mnv2.fineTunePhase.unfreeze).toBeUndefined();
    expect(parseRunConfig({ dataDir: '/d' })).toMatchObject({ preprocess: 'caffe', fineTunePhase: { epochs: 5, learningRate: 1e-5, unfreeze: 'block5' } });
    // a phase given in part gets the other fields' defaults; given values stay
    expect(parseRunConfig({ dataDir: '/d', headPhase: { epochs: 3 } as { epochs: number; learningRate: number } }).headPhase).toEqual({
      epochs: 3,
      learningRate: 1e-3,
    });
    expect(configOf(['--data', '/d', '--backbone', '/models/mnv2'])).toEqual(mnv2);
  });

  it('the help names the resolved defaults', () => {
    const help = addTrainingFlags(new Command('train')).helpInformation().replace(/\s+/g, ' ');
    expect(help).toContain('--fine-tune-lr <rate> phase 2 learning rate (default: 0.00001 for VGG16, 0.0001 for other backbones)');
    expect(help).toContain('or plateau (halve on a validation-loss plateau) (default: plateau for VGG16, cosine for other backbones)');
    expect(help).toContain('counted per step (default: 0 for VGG16, 1 for other backbones)');
    expect(help).toContain('y*(1-eps) + eps/C (default: 0 for VGG16, 0.1 for other backbones)');
    expect(help).toContain('horizontal flip) (default: off)');
    expect(help).toMatch(/--preprocess <mode> [^(]*\(\[-1,1\]\) or unit \(\[0,1\]\) \(default: caffe for VGG16, unit otherwise\)/);
  });

  it('--augment, --no-augment, single ranges and --augment-views resolve to the augmentation and views given', () => {
    const none = { rotationRange: 0, widthShiftRange: 0, heightShiftRange: 0, shearRange: 0, zoomRange: 0, horizontalFlip: false };
    expect(configOf(['--data', '/d']).augmentation).toMatchObject(none);
    expect(configOf(['--data', '/d', '--no-augment']).augmentation).toMatchObject(none);
    expect(configOf(['--data', '/d', '--augment', '--zoom-range', '0.2']).augmentation).toMatchObject({
      rotationRange: 20,
      widthShiftRange: 0.1,
      shearRange: 10,
      zoomRange: 0.2,
      horizontalFlip: true,
    });
    // a single range alone is that range only
    expect(configOf(['--data', '/d', '--zoom-range', '0.2']).augmentation).toMatchObject({ ...none, zoomRange: 0.2 });
    expect(configOf(['--data', '/d']).cachedViews).toBe(3);
    expect(configOf(['--data', '/d', '--augment-views', '4']).cachedViews).toBe(4);
    expect(configOf(['--data', '/d', '--cached-views', '2']).cachedViews).toBe(2);
  });

  it('a YAML or JSON file sets values, flags override them, and backbone defaults follow the file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dpt-config-'));
    const yml = path.join(dir, 'run.yaml');
    writeFileSync(
      yml,
      'dataDir: /data/scenes\nbackbone:\n  kind: layers\n  path: /m\nheadPhase:\n  epochs: 3\n  learningRate: 0.01\nhead:\n  units: 64\nlabelSmoothing: 0.1\n',
    );
    const c = configOf(['--config', yml, '--epochs', '4']);
    expect(c.dataDir).toBe('/data/scenes');
    expect(c.headPhase).toEqual({ epochs: 4, learningRate: 0.01 });
    expect(c.head.units).toBe(64);
    expect(c.labelSmoothing).toBe(0.1);
    expect(c.preprocess).toBe('unit'); // the file's backbone is not VGG
    expect(c).toMatchObject({ lrSchedule: 'cosine', warmupEpochs: 1, labelSmoothing: 0.1 });
    // a file's augmentation range replaces the default's, the others keep theirs; --augment on top gives the preset's
    const partial = path.join(dir, 'partial.yaml');
    writeFileSync(partial, 'dataDir: /d\nbackbone:\n  kind: layers\n  path: /m\naugmentation:\n  zoomRange: 0.3\n');
    expect(configOf(['--config', partial]).augmentation).toMatchObject({ zoomRange: 0.3, rotationRange: 0, horizontalFlip: false });
    expect(configOf(['--config', partial, '--augment']).augmentation).toMatchObject({ zoomRange: 0.1, rotationRange: 20, horizontalFlip: true });
    const json = path.join(dir, 'run.json');
    writeFileSync(json, JSON.stringify({ dataDir: '/x', optimizer: 'adamw', lrSchedule: 'cosine' }));
    expect(configOf(['--config', json, '--data', '/y'])).toMatchObject({ dataDir: '/y', optimizer: 'adamw', lrSchedule: 'cosine' });
  });

  it('unknown keys, wrong types, a missing file and no data directory are refused by name', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dpt-config-bad-'));
    const f = (name: string, text: string) => {
      writeFileSync(path.join(dir, name), text);
      return path.join(dir, name);
    };
    expect(codeOf(() => configOf(['--config', f('a.yaml', 'dataDir: /d\nheadPhase:\n  epoch: 3\nlearningrate: 1\n')]))).toMatch(
      /^E_CONFIG: .*unknown keys headPhase\.epoch, learningrate/,
    );
    expect(codeOf(() => configOf(['--config', f('b.yaml', 'dataDir: /d\nbatchSize: big\n')]))).toMatch(
      /^E_CONFIG: .*batchSize: Expected number, received string/,
    );
    expect(codeOf(() => configOf(['--config', f('c.yaml', 'dataDir: /d\nhead: {pooling: max}\n')]))).toMatch(/^E_CONFIG: .*head\.pooling/);
    expect(codeOf(() => configOf(['--config', f('d.yaml', '- a\n- b\n')]))).toMatch(/^E_CONFIG: .*expected an object of run settings, got a list/);
    expect(codeOf(() => configOf(['--config', path.join(dir, 'missing.yaml')]))).toMatch(/^E_CONFIG: --config .*missing\.yaml: no such file/);
    expect(codeOf(() => configOf(['--epochs', '2']))).toMatch(/^E_CONFIG: .*no data directory/);
    expect(codeOf(() => configOf(['--data', '/d', '--epochs', 'many']))).toMatch(/^E_CONFIG: --epochs: 'many' is not a number/);
  });
});

describe('RUN/config.yaml through the real CLI', () => {
  it('train writes config.yaml; train --config RUN/config.yaml reproduces the run; --print-config prints it and exits', async () => {
    const base = mkdtempSync(path.join(tmpdir(), 'dpt-config-cli-'));
    const dataDir = path.join(base, 'data');
    await generateSyntheticScenes(dataDir, { seed: 7, perClass: 4, testPerClass: 1, size: 48 });
    const first = path.join(base, 'run1');
    await dptrain([
      'train',
      ...tinyRunFlags(dataDir, { epochs: 2 }),
      '--optimizer',
      'adamw',
      '--label-smoothing',
      '0.1',
      '--lr-schedule',
      'cosine',
      '--backend',
      'wasm',
      '-q',
      '--out',
      first,
    ]);
    const yamlFile = path.join(first, 'config.yaml');
    const written = parseYaml(readFileSync(yamlFile, 'utf8')) as Record<string, unknown>;
    expect(written).toMatchObject({ dataDir, optimizer: 'adamw', labelSmoothing: 0.1, lrSchedule: 'cosine', batchSize: 8, headPhase: { epochs: 2 } });

    const printed = await dptrain(['train', '--config', yamlFile, '--print-config', '--out', path.join(base, 'never')]);
    expect(parseYaml(printed.stdout)).toEqual(written);
    expect(existsSync(path.join(base, 'never'))).toBe(false);

    const second = path.join(base, 'run2');
    await dptrain(['train', '--config', yamlFile, '--backend', 'wasm', '-q', '--out', second]);
    expect(readFileSync(path.join(second, 'config.yaml'), 'utf8')).toBe(readFileSync(yamlFile, 'utf8'));
    expect(readFileSync(path.join(second, 'submission.csv'), 'utf8')).toBe(readFileSync(path.join(first, 'submission.csv'), 'utf8'));
    const losses = (dir: string) =>
      readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { trainLoss: number }).trainLoss);
    expect(losses(second)).toEqual(losses(first));
  }, 300_000);
});
