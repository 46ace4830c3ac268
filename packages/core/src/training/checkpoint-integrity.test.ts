import { afterEach, describe, expect, it, vi } from 'vitest';
import { promises as fsp, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { isDptrainError } from '../errors.js';
import { encodeState } from './state-codec.js';
import { checkpointPath, readCheckpoint, writeCheckpoint, type TrainingCheckpoint } from './checkpoint.js';
import { ENVELOPE_HEADER_BYTES } from './checkpoint-envelope.js';
import { writeFileAtomic } from './atomic-write.js';
import { AdamOptimizer } from './optimizers.js';

function sample(): TrainingCheckpoint {
  const opt = new AdamOptimizer();
  const w = new Float32Array([1, 2, 3, 4]);
  opt.step(w, new Float32Array([0.1, 0.2, 0.3, 0.4]));
  return {
    version: 2,
    phase: 'head',
    phaseDone: false,
    epoch: 1,
    stepInEpoch: 2,
    step: 7,
    spec: [{ name: 'dense/kernel', shape: [4], size: 4 }],
    weights: w,
    optimizer: opt.exportState(),
    callbacks: {},
    stopTraining: false,
    rng: { seed: 42, epoch: 1 },
    progress: { lossSum: 1, correct: 2, count: 3, elapsedMs: 4 },
    history: [],
    timings: {},
    datasetHash: 'abc',
    fingerprint: { batchSize: '32' },
  };
}

async function written(ckpt = sample()): Promise<{ dir: string; file: string; bytes: Buffer }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'dpt-ckpt-int-'));
  const file = await writeCheckpoint(dir, ckpt);
  return { dir, file, bytes: readFileSync(file) };
}

/** Reads the checkpoint and returns the E_CHECKPOINT error's message (fails the test on anything else). */
async function refusal(dir: string): Promise<string> {
  const e = await readCheckpoint(dir).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(isDptrainError(e, 'E_CHECKPOINT'), `expected E_CHECKPOINT, got ${String(e)}`).toBe(true);
  const message = (e as Error).message;
  expect(message).toContain(checkpointPath(dir));
  return message;
}

describe('checkpoint integrity', () => {
  afterEach(() => vi.restoreAllMocks());

  it('round-trips a sealed (version 2) checkpoint', async () => {
    const { dir, bytes } = await written();
    expect(bytes.toString('latin1', 0, 8)).toBe('DPTCKPT2');
    const back = await readCheckpoint(dir);
    expect(back?.version).toBe(2);
    expect(Array.from(back?.weights ?? [])).toEqual([...sample().weights].map((x) => x));
    expect(back?.fingerprint).toEqual({ batchSize: '32' });
  });

  it('refuses a flipped bit in a weight (checksum mismatch)', async () => {
    const { dir, file, bytes } = await written();
    const at = bytes.length - 4 * 4 * 3 + 1; // inside the first weight (weights, then m, then v)
    bytes[at] = (bytes[at] as number) ^ 0x01;
    writeFileSync(file, bytes);
    expect(await refusal(dir)).toMatch(/checksum mismatch/);
  });

  it('refuses 5,000 junk trailing bytes', async () => {
    const { dir, file, bytes } = await written();
    writeFileSync(file, Buffer.concat([bytes, Buffer.alloc(5000, 0x5a)]));
    expect(await refusal(dir)).toMatch(/5000 unexpected trailing bytes/);
  });

  it('refuses a truncated file', async () => {
    const { dir, file, bytes } = await written();
    writeFileSync(file, bytes.subarray(0, bytes.length - 10));
    expect(await refusal(dir)).toMatch(/truncated checkpoint/);
  });

  it('refuses NaN weights and non-finite optimizer state even with a valid checksum', async () => {
    const bad = sample();
    bad.weights[2] = Number.NaN;
    expect(await refusal((await written(bad)).dir)).toMatch(/weight 2 is NaN/);
    const badOpt = sample();
    (badOpt.optimizer.slots.v as Float32Array)[1] = Number.POSITIVE_INFINITY;
    expect(await refusal((await written(badOpt)).dir)).toMatch(/optimizer slot v\[1\] is Infinity/);
  });

  it('refuses a flipped byte in the JSON header (body) and in the envelope header, with a code and the file name', async () => {
    const { dir, file, bytes } = await written();
    const body = Buffer.from(bytes);
    body[ENVELOPE_HEADER_BYTES + 13] = 0x7b; // '{' inside the JSON header text
    writeFileSync(file, body);
    expect(await refusal(dir)).toMatch(/checksum mismatch/);
    const env = Buffer.from(bytes);
    env[9] = (env[9] as number) ^ 0x40; // the declared body length
    writeFileSync(file, env);
    expect(await refusal(dir)).toMatch(/truncated checkpoint|trailing bytes/);
    const magic = Buffer.from(bytes);
    magic[2] = 0;
    writeFileSync(file, magic);
    expect(await refusal(dir)).toMatch(/not a dptrain checkpoint/);
  });

  describe('version-1 files (no envelope)', () => {
    const v1 = (): Buffer => {
      const c: Omit<TrainingCheckpoint, 'fingerprint'> & { version: 1 } = { ...sample(), version: 1 };
      delete (c as Partial<TrainingCheckpoint>).fingerprint;
      return encodeState(c);
    };
    const v1Dir = (bytes: Buffer): string => {
      const dir = mkdtempSync(path.join(tmpdir(), 'dpt-ckpt-v1-'));
      writeFileSync(checkpointPath(dir), bytes);
      return dir;
    };

    it('still load, with a warning that they carry no integrity check', async () => {
      const warnings: string[] = [];
      const back = await readCheckpoint(v1Dir(v1()), { onWarning: (m) => warnings.push(m) });
      expect(back?.version).toBe(1);
      expect(back?.step).toBe(7);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/version-1 checkpoint: it carries no integrity check/);
    });

    it('refuse a flipped header byte with E_CHECKPOINT (not a bare JSON parse error)', async () => {
      const bytes = v1();
      bytes[12] = 0x21; // first character of the JSON header
      expect(await refusal(v1Dir(bytes))).toMatch(/corrupt header/);
    });

    it('refuse trailing bytes and NaN weights', async () => {
      expect(await refusal(v1Dir(Buffer.concat([v1(), Buffer.alloc(5000, 1)])))).toMatch(/5000 unexpected trailing bytes/);
      const c = { ...sample(), version: 1 as const, weights: new Float32Array([1, Number.NaN, 3, 4]) };
      expect(await refusal(v1Dir(encodeState(c)))).toMatch(/weight 1 is NaN/);
    });
  });

  it('writeFileAtomic fsyncs the directory after the rename', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dpt-atomic-'));
    const calls: string[] = [];
    const realOpen = fsp.open.bind(fsp);
    vi.spyOn(fsp, 'open').mockImplementation(async (p, flags, mode) => {
      const fh = await realOpen(p, flags, mode);
      const realSync = fh.sync.bind(fh);
      fh.sync = async () => {
        calls.push(`sync ${String(p)}`);
        return realSync();
      };
      return fh;
    });
    const realRename = fsp.rename.bind(fsp);
    vi.spyOn(fsp, 'rename').mockImplementation(async (a, b) => {
      calls.push('rename');
      return realRename(a, b);
    });
    await writeFileAtomic(path.join(dir, 'x.bin'), 'hello');
    expect(calls.at(-2)).toBe('rename');
    expect(calls.at(-1)).toBe(`sync ${dir}`);
    expect(readFileSync(path.join(dir, 'x.bin'), 'utf8')).toBe('hello');
  });
});
