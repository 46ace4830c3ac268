import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { parseRunConfig, type RunConfig, type RunConfigInput } from '@dptrain/core';

export const REPO = resolve(import.meta.dirname, '../..');
export const BIN = join(REPO, 'packages/cli/bin/dptrain.js');

/** Tiny competition-layout data set: `classes` colours, with noise, `perClass` train images each and `test` test images. */
export async function makeSceneDir(opts: { classes?: number; perClass?: number; test?: number; size?: number } = {}): Promise<string> {
  const { classes = 3, perClass = 16, test = 10, size = 32 } = opts;
  const dir = mkdtempSync(join(tmpdir(), 'dp-cluster-'));
  mkdirSync(join(dir, 'SceneImages'));
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const write = async (name: string, cls: number) => {
    const raw = Buffer.alloc(size * size * 3);
    const base = [cls === 0 ? 200 : 40, cls === 1 ? 200 : 40, cls === 2 ? 200 : 40 + cls * 30];
    for (let i = 0; i < size * size; i++) for (let c = 0; c < 3; c++) raw[i * 3 + c] = Math.max(0, Math.min(255, base[c]! + Math.round((rnd() - 0.5) * 80)));
    await sharp(raw, { raw: { width: size, height: size, channels: 3 } })
      .jpeg({ quality: 90 })
      .toFile(join(dir, 'SceneImages', name));
  };
  const train = ['image_name,label'];
  for (let k = 0; k < classes * perClass; k++) {
    const cls = k % classes;
    const name = `${k}.jpg`;
    train.push(`${name},${cls}`);
    await write(name, cls);
  }
  const testRows = ['image_name'];
  for (let k = 0; k < test; k++) {
    const name = `t${k}.jpg`;
    testRows.push(name);
    await write(name, k % classes);
  }
  writeFileSync(join(dir, 'train.csv'), `${train.join('\n')}\n`);
  writeFileSync(join(dir, 'test.csv'), `${testRows.join('\n')}\n`);
  return dir;
}

/** The run config of the in-test step loops: tiny-vgg at 32x32 on `makeSceneDir` data, batch 8 in micro-batches of 2. */
export function tinyLoopConfig(dataDir: string, extra: Record<string, unknown> = {}): RunConfig {
  // 4 micro-batches a step: up to 4 workers take part
  return tinyClusterConfig(dataDir, [8, 16, 32, 32, 32], { batchSize: 8, microBatch: 2, ...(extra as Omit<RunConfigInput, 'dataDir'>) });
}

/** Training flags for a tiny-vgg run on `makeSceneDir` data. */
export function tinyFlags(data: string, extra: Record<string, string | number | boolean> = {}): string[] {
  const flags: Record<string, string | number | boolean> = {
    data,
    backbone: 'tiny-vgg',
    'input-size': '32x32',
    preprocess: 'unit',
    epochs: 1,
    'fine-tune-epochs': 0,
    'batch-size': 8,
    'micro-batch': 2, // 4 micro-batches a step, so several workers take part
    'head-units': 8,
    dropout: 0,
    'validation-split': 0.25,
    precision: 'fp32', // today's bits (cpu and wasm workers; bf16 has its own tests)
    ...extra,
  };
  const out: string[] = [];
  for (const [k, v] of Object.entries(flags)) {
    if (v === false) continue;
    out.push(`--${k}`);
    if (v !== true) out.push(String(v));
  }
  return out;
}

export interface Proc {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** Runs `dptrain ARGS` as a child process, collecting stdout+stderr. */
export function dptrain(args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  return { child, output: () => out, exited };
}

/** Ends a test's processes: SIGCONT (a stopped process would not take the kill), SIGKILL, and waits until each has exited. */
export async function killAll(procs: readonly Proc[]): Promise<void> {
  for (const p of procs) {
    p.child.kill('SIGCONT');
    p.child.kill('SIGKILL');
  }
  await Promise.all(procs.map((p) => p.exited));
}

/** Resolves when `pred(output)` holds, or rejects after `timeoutMs`. */
export async function waitFor(proc: Proc, pred: (out: string) => boolean, timeoutMs: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!pred(proc.output())) {
    if (proc.child.exitCode !== null) throw new Error(`${what}: process exited (${proc.child.exitCode}) first:\n${proc.output().slice(-3000)}`);
    if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: timed out:\n${proc.output().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A TCP port that was free on 127.0.0.1 a moment ago (for a process that must listen on a known port). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** The run config of the cluster tests: tiny-VGG of `tinyWidths` at 32 px on `dataDir`, unit preprocessing, an 8-unit head without dropout; `over` on top. */
export function tinyClusterConfig(dataDir: string, tinyWidths: number[], over: Omit<RunConfigInput, 'dataDir'> = {}): RunConfig {
  return parseRunConfig({
    dataDir,
    backbone: { kind: 'tiny-vgg', inputSize: [32, 32], tinyWidths },
    preprocess: 'unit',
    head: { units: 8, dropout: 0 },
    ...over,
  });
}

/**
 * A short head-only tiny-vgg run for the cluster tests: batch 8 in micro-batches of 2, one head epoch at 1e-2, no
 * fine-tuning, a quarter for validation, no checkpoints; `over` replaces any of it.
 */
export function tinyHeadRunConfig(dataDir: string, tinyWidths: number[], over: Omit<RunConfigInput, 'dataDir'> = {}): RunConfig {
  return tinyClusterConfig(dataDir, tinyWidths, {
    batchSize: 8,
    microBatch: 2,
    headPhase: { epochs: 1, learningRate: 1e-2 },
    fineTunePhase: { epochs: 0, learningRate: 1e-5, unfreeze: 'block5' },
    validationSplit: 0.25,
    checkpointEvery: 0,
    ...over,
  });
}

export interface WaitForWorkersOptions {
  /** Give up after this long. Default 200 s (worker processes start slowly on a loaded machine). */
  timeoutMs?: number;
  /** Longest wait for one join before checking again. Default 1000 ms. */
  pollMs?: number;
  /** What to add to the error when it gives up (the workers' output). Default: nothing. */
  output?: () => string;
}

/** Waits until `joined()` holds, woken by each join of `server`; throws `what()` (and `output()`) after `timeoutMs`. */
export async function waitForWorkers(
  server: { waitForJoin(timeoutMs: number): Promise<unknown> },
  joined: () => boolean,
  what: () => string,
  options: WaitForWorkersOptions = {},
): Promise<void> {
  const t0 = Date.now();
  while (!joined()) {
    if (Date.now() - t0 > (options.timeoutMs ?? 200_000)) throw new Error(options.output ? `${what()}:\n${options.output()}` : what());
    await server.waitForJoin(options.pollMs ?? 1000);
  }
}
