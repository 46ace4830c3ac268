import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fakeNvidiaSmiDir, THREE_GPUS } from './fake-nvidia-smi.testutil.js';
import { processesMentioning } from '../helpers/processes.testutil.js';

const run = promisify(execFile);
const root = path.resolve(__dirname, '../..');
const bin = path.join(root, 'packages/cli/bin/dptrain.js');

/** `dptrain doctor ARGS` as a real process whose PATH is only `pathDir` (no real nvidia-smi in reach). */
async function doctor(args: string[], pathDir: string): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const r = await run(process.execPath, [bin, 'doctor', ...args], { cwd: root, timeout: 120_000, env: { ...process.env, PATH: pathDir } });
    return { ...r, code: 0 };
  } catch (e) {
    const err = e as { stdout: string; stderr: string; code: number };
    return { stdout: err.stdout, stderr: err.stderr, code: err.code };
  } finally {
    // neither doctor nor the nvidia-smi it ran outlives the call (PATH=pathDir is in each one's environment)
    expect(processesMentioning(pathDir)).toEqual([]);
  }
}

describe('dptrain doctor (real CLI process, stand-in nvidia-smi)', () => {
  it('--json with an A100 (8.0), H100 (9.0) and B200 (10.0) gives native, ptx-jit, unsupported in that order', async () => {
    const r = await doctor(['--json'], fakeNvidiaSmiDir(THREE_GPUS));
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as {
      backends: { name: string; available: boolean; reason: string | null }[];
      gpus: { index: number; name: string; computeCapability: string; driver: string; memoryMiB: number; tfjsNodeGpu: string }[];
      cuda: { runtime: string | null; cudnn: string | null };
    };
    expect(report.gpus.map((g) => g.tfjsNodeGpu)).toEqual(['native', 'ptx-jit', 'unsupported']);
    expect(report.gpus[1]).toEqual({
      index: 1,
      name: 'NVIDIA H100 80GB HBM3',
      computeCapability: '9.0',
      driver: '550.54.15',
      memoryMiB: 81559,
      tfjsNodeGpu: 'ptx-jit',
    });
    expect(report.backends.map((b) => b.name)).toEqual(['tensorflow-gpu', 'tensorflow', 'native', 'wasm', 'cpu']);
    const cpu = report.backends.find((b) => b.name === 'cpu')!;
    expect(cpu).toEqual({ name: 'cpu', available: true, reason: null });
    for (const b of report.backends) if (!b.available) expect(b.reason, b.name).toMatch(/\S/);
    expect(Object.keys(report.cuda).sort()).toEqual(['cudnn', 'runtime']);
  });

  it('without nvidia-smi: no GPUs, exit 0; the plain report says so', async () => {
    const empty = mkdtempSync(path.join(tmpdir(), 'no-smi-'));
    const json = await doctor(['--json'], empty);
    expect(json.code, json.stderr).toBe(0);
    expect((JSON.parse(json.stdout) as { gpus: unknown[] }).gpus).toEqual([]);
    const plain = await doctor([], empty);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toContain('GPUs: none');
    expect(plain.stdout).toMatch(/^ {2}cpu +loads/m);
  });

  it('an old driver (no compute_cap field) is asked again without it and the GPU name gives the capability', async () => {
    const dir = fakeNvidiaSmiDir(['Tesla V100-SXM2-16GB, 470.82.01, 16160', 'Mystery GPU, 470.82.01, 8000'], { oldDriver: true });
    const r = await doctor(['--json'], dir);
    expect(r.code, r.stderr).toBe(0);
    const gpus = (JSON.parse(r.stdout) as { gpus: { computeCapability: string | null; tfjsNodeGpu: string | null; driver: string; memoryMiB: number }[] }).gpus;
    expect(gpus).toEqual([
      { index: 0, name: 'Tesla V100-SXM2-16GB', computeCapability: '7.0', driver: '470.82.01', memoryMiB: 16160, tfjsNodeGpu: 'native' },
      { index: 1, name: 'Mystery GPU', computeCapability: null, driver: '470.82.01', memoryMiB: 8000, tfjsNodeGpu: null },
    ]);
  });
});
