import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/** The repository root and the `dptrain` bin, for tests that run the real CLI. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DPTRAIN_BIN = path.join(REPO_ROOT, 'packages/cli/bin/dptrain.js');

/** The small VGG-shaped model the CLI tests train: tiny-vgg at 32x32 with tf preprocessing. */
export const TINY_MODEL_FLAGS: readonly string[] = ['--backbone', 'tiny-vgg', '--input-size', '32x32', '--preprocess', 'tf'];

/** A tiny CLI run's settings (see tinyRunFlags). */
export interface TinyRunOptions {
  /** Head epochs (`--epochs`). Default: 1. */
  epochs?: number;
  /** Fine-tune epochs (`--fine-tune-epochs`). Default: 1. */
  fineTuneEpochs?: number;
  /** `--batch-size`. Default: 8. */
  batchSize?: number;
  /** `--pooling`. Default: none given (the CLI's). */
  pooling?: 'flatten' | 'gap';
  /** `--backend`. Default: none given (the CLI's choice). */
  backend?: string;
}

/** `--data DIR`, the tiny model and a short recipe: the flags most CLI tests train with. */
export function tinyRunFlags(dataDir: string, o: TinyRunOptions = {}): string[] {
  return [
    '--data',
    dataDir,
    ...TINY_MODEL_FLAGS,
    ...(o.pooling ? ['--pooling', o.pooling] : []),
    '--epochs',
    String(o.epochs ?? 1),
    '--fine-tune-epochs',
    String(o.fineTuneEpochs ?? 1),
    '--batch-size',
    String(o.batchSize ?? 8),
    ...(o.backend ? ['--backend', o.backend] : []),
  ];
}

const run = promisify(execFile);

/** Runs `dptrain ARGS` to its end (rejects on a non-zero exit, with its output), from the repository root. */
export function dptrain(args: readonly string[], timeoutMs = 240_000): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [DPTRAIN_BIN, ...args], { cwd: REPO_ROOT, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
}
