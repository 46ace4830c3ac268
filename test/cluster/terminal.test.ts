import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, REPO, makeSceneDir, tinyFlags } from './fixtures.testutil.js';
import { waitNoProcessWith } from '../helpers/processes.testutil.js';

/**
 * The dashboard owns the terminal: under a real pseudo-terminal (util-linux `script`), `dptrain demo` and
 * `dptrain single` draw the ink dashboard, and their local workers' lines go to run.log.jsonl (notable ones to
 * the events pane), never raw onto the terminal.
 */
const hasScript = (() => {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
if (!hasScript) console.warn('[terminal] skipped: util-linux `script` is not installed (apt-get install bsdutils)');

function underPty(args: string[]): Promise<{ code: number | null; tty: string }> {
  const cmd = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const child = spawn('script', ['-qfec', cmd, '/dev/null'], {
    cwd: REPO,
    env: { ...process.env, TERM: 'xterm-256color', COLUMNS: '120', LINES: '40' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tty = '';
  child.stdout.on('data', (d) => (tty += d));
  child.stderr.on('data', (d) => (tty += d));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, tty })));
}

function workerLinesInLog(runDir: string): { level: string; msg: string }[] {
  return readFileSync(join(runDir, 'run.log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { level: string; msg: string; event: string })
    .filter((e) => e.event === 'log' && e.msg.startsWith('local agent: ')); // the agent's lines and its workers'
}

describe.skipIf(!hasScript)('the terminal in dashboard mode (a pseudo-terminal)', () => {
  it('dptrain demo: no worker line on the terminal; all of them in run.log.jsonl', { timeout: 300_000 }, async () => {
    const runDir = join(mkdtempSync(join(tmpdir(), 'dp-demo-tty-')), 'run');
    const { code, tty } = await underPty([
      'demo',
      '--out',
      runDir,
      '--per-class',
      '6',
      '--epochs',
      '2',
      '--fine-tune-epochs',
      '0',
      '--backend',
      'cpu',
      '--workers',
      '2',
    ]);
    expect(code, tty.slice(-3000)).toBe(0);
    expect(tty).toContain('\u001b['); // ink drew frames
    expect(tty).not.toContain('dptrain worker:');
    const lines = workerLinesInLog(runDir);
    expect(lines.some((l) => /^local agent: backend cpu/.test(l.msg))).toBe(true);
    expect(lines.some((l) => /joined as w\d+/.test(l.msg))).toBe(true);
    expect(await waitNoProcessWith(runDir, 10_000)).toEqual([]);
  });

  it("dptrain single: the same (before, dashboard mode dropped the workers' output)", { timeout: 300_000 }, async () => {
    const dir = await makeSceneDir({ perClass: 6, test: 3 });
    const runDir = mkdtempSync(join(tmpdir(), 'dp-single-tty-'));
    const { code, tty } = await underPty(['single', ...tinyFlags(dir, { epochs: 2 }), '--backend', 'cpu', '--workers', '2', '--no-charts', '--out', runDir]);
    expect(code, tty.slice(-3000)).toBe(0);
    expect(tty).not.toContain('dptrain worker:');
    expect(workerLinesInLog(runDir).some((l) => /^local agent: backend cpu/.test(l.msg))).toBe(true);
    expect(await waitNoProcessWith(dir, 10_000)).toEqual([]);
  });
});
