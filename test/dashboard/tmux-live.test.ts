import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, REPO, makeSceneDir, tinyFlags } from '../cluster/fixtures.testutil.js';

/**
 * The real dashboard in a real pseudo-terminal: `dptrain single --workers 2` runs inside a detached tmux
 * session (160x50), and the test reads the screen with `tmux capture-pane -p`.
 */
const hasTmux = spawnSync('tmux', ['-V'], { stdio: 'ignore' }).status === 0;
if (!hasTmux) {
  console.warn('test/dashboard/tmux-live.test.ts: skipped, tmux is not installed (apt-get install tmux)');
}

const session = `dptrain-dash-${process.pid}`;
const tmux = (...args: string[]): string => execFileSync('tmux', args, { encoding: 'utf8' });
const screen = (history = false): string => {
  try {
    return history ? tmux('capture-pane', '-p', '-S', '-3000', '-t', session) : tmux('capture-pane', '-p', '-t', session);
  } catch {
    return '';
  }
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitScreen(pred: (s: string) => boolean, timeoutMs: number, what: string, history = false): Promise<string> {
  const t0 = Date.now();
  for (;;) {
    const s = screen(history);
    if (pred(s)) return s;
    if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: not seen within ${timeoutMs} ms; screen:\n${s}`);
    await sleep(250);
  }
}

const stepOf = (s: string): number | undefined => {
  const m = /epoch \d+\/\d+ {2}step (\d+) /.exec(s);
  return m ? Number(m[1]) : undefined;
};

const dirs: string[] = [];
afterAll(() => {
  if (hasTmux) spawnSync('tmux', ['kill-session', '-t', session], { stdio: 'ignore' });
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe.skipIf(!hasTmux)('dashboard in a pseudo-terminal (tmux) against a live dptrain single', () => {
  it('shows the local agent and a moving step count; q closes the view and the run goes on', async () => {
    const data = await makeSceneDir({ classes: 3, perClass: 16, test: 6 });
    const out = mkdtempSync(join(tmpdir(), 'dptrain-dash-run-'));
    dirs.push(data, out);
    const runDir = join(out, 'run');
    const args = [
      BIN,
      'single',
      '--workers',
      '2',
      '--backend',
      'wasm',
      '--out',
      runDir,
      // no feature cache: every step decodes its images, so the run lasts long enough to watch it move
      ...tinyFlags(data, { epochs: 120, patience: 1000, 'checkpoint-every': 0, 'no-cache': true }),
    ];
    const quoted = [process.execPath, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
    // keep the pane after the command ends so its last screen can be read
    // ink draws only the last frame when CI is set (as on the CI runner): the live view needs it unset
    tmux('new-session', '-d', '-s', session, '-x', '160', '-y', '50', '-c', REPO, `env -u CI ${quoted}; echo "EXITED:$?"; sleep 120`);

    // single runs one local agent for its 2 workers: the coordinator's one peer is in the table (id, host,
    // backend/device), and the first steps are done
    const first = await waitScreen((s) => /^w1 +\S+ +wasm\//m.test(s) && (stepOf(s) ?? 0) > 0, 150_000, 'the local agent and a step count');
    expect(first).toMatch(/^dptrain .*run run/m);
    expect(first).toMatch(/workers 1 connected/);
    expect(first).not.toMatch(/^w2 /m);
    expect(first).toMatch(/phase 1 head {2}epoch \d+\/120/);
    expect(first).toMatch(/throughput \d+\.\d img\/s/);
    const s1 = stepOf(first)!;

    // the step count moves on the screen
    const later = await waitScreen((s) => (stepOf(s) ?? 0) > s1 || /EXITED:/.test(s), 60_000, `a step after ${s1}`);
    const s2 = stepOf(later) ?? 0;
    expect(s2).toBeGreaterThan(s1);

    // q closes the view; the run carries on with plain lines and finishes
    tmux('send-keys', '-t', session, 'q');
    const end = await waitScreen((s) => /EXITED:\d+/.test(s), 300_000, 'the end of the run', true);
    // the view closed, then plain lines went on with later steps until the run's end
    const after = end.slice(end.indexOf('dashboard closed; the run goes on'));
    expect(end).toContain('dashboard closed; the run goes on');
    const laterSteps = [...after.matchAll(/ step (\d+) /g)].map((m) => Number(m[1]));
    expect(Math.max(...laterSteps)).toBeGreaterThan(s2);
    expect(after).toMatch(/done: \d+ steps/);
    expect(end).toMatch(/EXITED:0/);
    expect(existsSync(join(runDir, 'report.json'))).toBe(true);
    expect(existsSync(join(runDir, 'chart-loss.png'))).toBe(true);
    expect(existsSync(join(runDir, 'run.log.jsonl'))).toBe(true);
  }, 480_000);
});
