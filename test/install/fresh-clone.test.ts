// The README's first command on a machine without oneDNN: a fresh clone of this checkout's HEAD, then
// `npm ci` and `npm start` with DNNL_ROOT pointing nowhere (the project's own knob makes oneDNN unfindable).
// Both must exit 0, the native build must say it was skipped and how to get it, and the demo must run on wasm.
// It tests what is committed (CI tests a clean clone of main, so there HEAD is the tree under test).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { processesMentioning } from '../helpers/processes.testutil.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const isCheckout = spawnSync('git', ['-C', root, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).status === 0;
const dir = mkdtempSync(path.join(tmpdir(), 'dptrain-fresh-clone-'));
const clone = path.join(dir, 'dptrain');
const env = { ...process.env, DNNL_ROOT: '/nonexistent-onednn', CI: 'true', FORCE_COLOR: '0' };
delete env.DPTRAIN_NATIVE_ADDON;

// Asynchronous, so that the test worker's event loop stays free for vitest's own messages: a spawnSync of `npm ci`
// that took over a minute (no oneDNN, a busy machine) made vitest fail the run with "Timeout calling onTaskUpdate".
function run(cmd: string, args: string[]): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: clone, env, timeout: 240_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', (err) => (stderr += String(err)));
    child.on('close', (status) => resolve({ status, output: `${stdout}${stderr}` }));
  });
}

// a clone with its node_modules takes a while to delete on a busy machine
afterAll(() => rmSync(dir, { recursive: true, force: true }), 600_000);

describe.skipIf(!isCheckout || process.platform !== 'linux')('a fresh clone without oneDNN', () => {
  it('npm ci and npm start exit 0, skip the native build with a hint, and run the demo on wasm', async () => {
    const cloned = spawnSync('git', ['clone', '--quiet', '--no-hardlinks', root, clone], { encoding: 'utf8' });
    expect(cloned.status, cloned.stderr).toBe(0);

    const install = await run('npm', ['ci', '--no-audit', '--no-fund', '--prefer-offline']);
    expect(install.status, install.output.slice(-3000)).toBe(0);

    const start = await run('npm', ['start']);
    expect(start.status, start.output.slice(-3000)).toBe(0);
    expect(start.output).toMatch(/oneDNN not found.*native backend skipped.*apt-get install libdnnl-dev, then npm run build:native/);
    expect(start.output).toMatch(/dptrain demo: backend wasm/);
    expect(start.output).toMatch(/submission: .*submission\.csv/);

    // the demo's local workers are gone with it
    expect(processesMentioning(clone)).toEqual([]);
  }, 600_000);
});
