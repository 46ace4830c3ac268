import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { parseRunConfig, type RunConfig } from '@dptrain/core';
import type { ClusterServer } from '../../packages/coordinator/src/cluster/index.js';

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

/** The tiny VGG run config of the in-test cluster runs (cpu-sized widths, unit preprocessing, a small head) over `dir`. */
export function tinyClusterConfig(dir: string, extra: Partial<RunConfig> = {}): RunConfig {
  return parseRunConfig({
    dataDir: dir,
    backbone: { kind: 'tiny-vgg', inputSize: [32, 32], tinyWidths: [4, 4, 8, 8, 8] },
    preprocess: 'unit',
    head: { units: 8, dropout: 0 },
    ...extra,
  });
}

/** Waits until a worker named `host` has joined `server`; the error shows the tail of each of `procs`' output. */
export async function waitForWorkerNamed(server: ClusterServer, host: string, procs: readonly Proc[], timeoutMs = 200_000): Promise<void> {
  const t0 = Date.now();
  while (!server.workers.some((w) => w.info?.host === host)) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`${host} never joined:\n${procs.map((p) => p.output().slice(-2000)).join('\n')}`);
    await server.waitForJoin(500);
  }
}
