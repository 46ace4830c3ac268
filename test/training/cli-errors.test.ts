import { afterAll, describe, expect, it, beforeAll } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { generateSyntheticScenes } from '@dptrain/core';
import { tinyRunFlags } from '../helpers/cli.testutil.js';
import { processesMentioning } from '../helpers/processes.testutil.js';

const run = promisify(execFile);
const root = path.resolve(__dirname, '../..');
const bin = path.join(root, 'packages/cli/bin/dptrain.js');

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

async function dptrain(args: string[], env: Record<string, string> = {}): Promise<Ran> {
  const childEnv = { ...process.env, ...env };
  if (!('DPTRAIN_DEBUG' in env)) delete childEnv.DPTRAIN_DEBUG;
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, ...args], { cwd: root, env: childEnv, timeout: 240_000, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

function lastLine(text: string): string {
  return text.trim().split('\n').at(-1) ?? '';
}

const FAULT = { DPTRAIN_TEST_KERNEL_FAULT: 'Conv2D' };
const INTERNAL =
  /^dptrain: \[E_INTERNAL\] internal error in phase fine_tune, epoch 1, step (\d+), layer block5_conv1 \(Conv2D\), kernel Conv2D: TypeError: injected fault in kernel Conv2D/;

describe('dptrain errors a user can act on (real CLI processes)', () => {
  let base = '';
  let dataDir = '';
  const training = (out: string): string[] => [...tinyRunFlags(dataDir, { pooling: 'flatten', backend: 'wasm' }), '--out', path.join(base, out)];
  /** Step numbers of the head phase (the fault hits the first fine-tune step, the one after). */
  const headSteps = (out: string): number => {
    const first = JSON.parse(
      readFileSync(path.join(base, out, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')[0]!,
    ) as { phase: string; step: number };
    expect(first.phase).toBe('head');
    return first.step;
  };

  beforeAll(async () => {
    base = mkdtempSync(path.join(tmpdir(), 'dpt-errors-'));
    dataDir = path.join(base, 'data');
    await generateSyntheticScenes(dataDir, { seed: 5, perClass: 6, testPerClass: 1, size: 32 });
  });

  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it('an unexpected error in a training step is [E_INTERNAL] with phase, epoch, step, layer and kernel, and says how to get the stack', async () => {
    const r = await dptrain(['train', ...training('run-fault'), '-q'], FAULT);
    expect(r.code).toBe(1);
    const last = lastLine(r.stderr);
    const m = INTERNAL.exec(last);
    expect(m, last).not.toBeNull();
    expect(Number(m![1])).toBe(headSteps('run-fault') + 1);
    expect(last).toMatch(/\(run again with --verbose or DPTRAIN_DEBUG=1 to see its stack\)$/);
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });

  it('--verbose and DPTRAIN_DEBUG=1 print the stack above the same last line', async () => {
    for (const [args, env] of [
      [['--verbose'], {}],
      [[], { DPTRAIN_DEBUG: '1' }],
    ] as const) {
      const r = await dptrain(['train', ...training(`run-verbose-${args.length}`), '-q', ...args], { ...FAULT, ...env });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/TypeError: injected fault in kernel Conv2D[^\n]*\n\s+at /);
      expect(lastLine(r.stderr)).toMatch(INTERNAL);
      expect(lastLine(r.stderr)).toMatch(/\(stack above\)$/);
    }
  });

  it('single: a worker failing the step is relayed with its layer and kernel; no worker process is left', async () => {
    const r = await dptrain(['single', '--workers', '1', '--plain', ...training('run-single')], FAULT);
    expect(r.code).toBe(1);
    const last = lastLine(r.stderr);
    expect(last, r.stderr.slice(-3000)).toMatch(
      /^dptrain: \[E_INTERNAL\] internal error in phase fine_tune, epoch 1, step \d+: .*worker w\d+ failed a task \[E_WORKER\]: TypeError: injected fault in kernel Conv2D/,
    );
    expect(last).toMatch(/layer block5_conv1 \(Conv2D\), kernel Conv2D/);
    await new Promise((res) => setTimeout(res, 1500));
    expect(processesMentioning(base)).toEqual([]);
  });

  it('command-line mistakes are [E_USAGE]; a bad count is [E_CONFIG]; dptrain errors keep their code; OS errors are [E_IO]; --help exits 0', async () => {
    const unknown = await dptrain(['predict', '--model', 'x', '--no-such-flag']);
    expect(unknown.code).toBe(1);
    expect(lastLine(unknown.stderr)).toBe("dptrain: [E_USAGE] unknown option '--no-such-flag'");
    const cmd = await dptrain(['trian']);
    expect(cmd.code).toBe(1);
    expect(lastLine(cmd.stderr)).toMatch(/^dptrain: \[E_USAGE\] unknown command 'trian'/);
    const image = await dptrain(['predict', '--model', base, path.join(base, 'nope.jpg')]);
    expect(image.code).toBe(1);
    expect(lastLine(image.stderr)).toMatch(/^dptrain: \[E_DATA_IMAGE\] .*nope\.jpg: no such image file$/);
    const io = await dptrain(['train', ...training('unused'), '--out', '/proc/version/run']);
    expect(io.code).toBe(1);
    expect(lastLine(io.stderr)).toMatch(/^dptrain: \[E_IO\] E[A-Z]+: .*\/proc\/version/);
    // a count flag that is not one names the flag, as a config error (not an internal one)
    const workers = await dptrain(['single', ...training('unused-single'), '--workers', 'two']);
    expect(workers.code).toBe(1);
    expect(lastLine(workers.stderr)).toBe("dptrain: [E_CONFIG] --workers: 'two' is not a count");
    const demoWorkers = await dptrain(['demo', '--workers', '-1', '--out', path.join(base, 'unused-demo')]);
    expect(demoWorkers.code).toBe(1);
    expect(lastLine(demoWorkers.stderr)).toBe("dptrain: [E_CONFIG] --workers: '-1' is not a count");
    const capacity = await dptrain(['worker', '--connect', 'ws://127.0.0.1:9', '--token', 't', '--backend', 'cpu', '--batch-capacity', '0']);
    expect(capacity.code).toBe(1);
    expect(lastLine(capacity.stderr)).toBe("dptrain: [E_CONFIG] --batch-capacity: '0' is not a count of 1 or more");
    const agentCapacity = await dptrain(['worker', '--connect', 'ws://127.0.0.1:9', '--token', 't', '--nproc-per-node', '1', '--batch-capacity', 'x']);
    expect(agentCapacity.code).toBe(1);
    expect(lastLine(agentCapacity.stderr)).toBe("dptrain: [E_CONFIG] --batch-capacity: 'x' is not a count of 1 or more");
    const predictBatch = await dptrain(['predict', '--model', base, '--batch-size', '0', path.join(base, 'nope.jpg')]);
    expect(predictBatch.code).toBe(1);
    expect(lastLine(predictBatch.stderr)).toBe("dptrain: [E_CONFIG] --batch-size: '0' is not a count of 1 or more");
    const help = await dptrain(['predict', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--verbose/);
  });
});
