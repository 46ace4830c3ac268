import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack } from 'msgpackr';
import WebSocket from 'ws';
import { afterAll, describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION, type RunEvent } from '@dptrain/core';
import { connectObserver, type ObserverConnection } from '@dptrain/client';
import { dptrain, makeSceneDir, tinyFlags, waitFor, type Proc, freePort } from './fixtures.testutil.js';

/**
 * A peer chooses strings that reach the coordinator's stdout, its run log and every observer (the dashboard).
 * A pre-auth frame whose `type` carries terminal escape sequences must arrive everywhere with them stripped.
 */
const TOKEN = 'injection-test-token-5d1f8c2a9e';
const procs: Proc[] = [];
let observer: ObserverConnection | undefined;

afterAll(() => {
  observer?.close();
  for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
});

// clear screen, a window-title OSC, red text, a bell, a C1 CSI, a bidi override, a forged line
const EVIL = '\u001b[2J\u001b]0;pwned\u0007\u001b[31mEVIL\u0007\u009b6n\u202eX\nforged line';
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e]/;

describe('terminal injection', () => {
  it('strips control characters from what a peer sends, on stdout, in run.log.jsonl and for observers', { timeout: 120_000 }, async () => {
    const dir = await makeSceneDir({ perClass: 4, test: 2 });
    const runDir = mkdtempSync(join(tmpdir(), 'dp-inject-run-'));
    const port = await freePort();
    const url = `ws://127.0.0.1:${port}`;
    const coord = dptrain(['coordinator', ...tinyFlags(dir), '--listen', `127.0.0.1:${port}`, '--min-workers', '1', '--plain', '--out', runDir], {
      DPTRAIN_TOKEN: TOKEN,
    });
    procs.push(coord);
    await waitFor(coord, (o) => o.includes('listening on'), 60_000, 'coordinator start');

    const seen: RunEvent[] = [];
    observer = await connectObserver({ url, token: TOKEN, onEvent: (e) => seen.push(e), reconnect: false });

    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.send(pack({ v: PROTOCOL_VERSION, type: EVIL }));
    await new Promise<void>((resolve) => ws.once('close', () => resolve()));

    const rejected = async (): Promise<Extract<RunEvent, { type: 'frame_rejected' }> | undefined> => {
      const t0 = Date.now();
      for (;;) {
        const e = seen.find((x): x is Extract<RunEvent, { type: 'frame_rejected' }> => x.type === 'frame_rejected');
        if (e || Date.now() - t0 > 10_000) return e;
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const event = await rejected();
    expect(event, 'the observer saw the rejection').toBeDefined();
    expect(event!.reason).toContain('EVIL');
    expect(event!.reason).toContain("'EVILX forged lin'"); // the text stays readable (the type is cut at 40 characters)...
    expect(event!.reason).not.toMatch(CONTROL); // ...without any control character
    expect(event!.reason).not.toContain('\n');

    await waitFor(coord, (o) => o.includes('EVIL'), 10_000, 'the rejection on stdout');
    const out = coord.output();
    expect(out).not.toMatch(CONTROL);
    expect(out.split('\n').some((l) => /^forged line/.test(l))).toBe(false);

    coord.child.kill('SIGTERM');
    await Promise.race([coord.exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (coord.child.exitCode === null && coord.child.signalCode === null) coord.child.kill('SIGKILL');
    await coord.exited;
    const log = readFileSync(join(runDir, 'run.log.jsonl'), 'utf8');
    expect(log).toContain('EVIL');
    expect(log).not.toMatch(/\\u001b|\\u0007|\\u009b|\u001b/);
    // no process of the test outlives it
    expect(procs.every((p) => p.child.exitCode !== null || p.child.signalCode !== null)).toBe(true);
  });
});
