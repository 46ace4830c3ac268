import { describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDptrainError, tokenWeakness } from '@dptrain/core';
import { resolveSharedToken } from './token-source.js';

const STRONG = '3f9c1e0b7a6d45c2b8e1f0a9d7c6b5a4e3f2d1c0b9a8';

function tokenFile(content: string, mode = 0o600): string {
  const file = join(mkdtempSync(join(tmpdir(), 'dpt-token-')), 'token');
  writeFileSync(file, content);
  chmodSync(file, mode);
  return file;
}

function collect(): { warnings: string[]; onWarning: (m: string) => void } {
  const warnings: string[] = [];
  return { warnings, onWarning: (m) => warnings.push(m) };
}

describe('shared token', () => {
  it('calls short and low-entropy tokens weak, random ones not, and never repeats the token', () => {
    expect(tokenWeakness('hunter2')).toMatch(/7 characters, fewer than 16/);
    expect(tokenWeakness('a'.repeat(40))).toMatch(/about 0 bits of entropy/);
    expect(tokenWeakness('passwordpassword')).toMatch(/bits of entropy, fewer than 64/);
    expect(tokenWeakness(STRONG)).toBeUndefined();
    expect(tokenWeakness('passwordpassword')).not.toContain('passwordpassword');
  });

  it('reads --token-file (trimmed), warns when others can read it or the token is weak', () => {
    const w = collect();
    expect(resolveSharedToken({ tokenFile: tokenFile(`${STRONG}\n`) }, { env: {}, onWarning: w.onWarning })).toBe(STRONG);
    expect(w.warnings).toEqual([]);
    const open = collect();
    expect(resolveSharedToken({ tokenFile: tokenFile('short\n', 0o644) }, { env: {}, onWarning: open.onWarning })).toBe('short');
    expect(open.warnings[0]).toMatch(/readable by others \(mode 644\)/);
    expect(open.warnings[1]).toMatch(/shared secret is weak: 5 characters/);
  });

  it('prefers the file over DPTRAIN_TOKEN, takes --token or the environment otherwise, and refuses bad sources with stable codes', () => {
    const w = collect();
    expect(resolveSharedToken({ tokenFile: tokenFile(STRONG) }, { env: { DPTRAIN_TOKEN: 'other' }, onWarning: w.onWarning })).toBe(STRONG);
    expect(resolveSharedToken({}, { env: { DPTRAIN_TOKEN: STRONG }, onWarning: w.onWarning })).toBe(STRONG);
    expect(resolveSharedToken({ token: STRONG }, { env: {}, onWarning: w.onWarning })).toBe(STRONG);
    const code = (f: () => unknown): string | undefined => {
      try {
        f();
      } catch (e) {
        return isDptrainError(e) ? e.code : `not a DptrainError: ${String(e)}`;
      }
      return undefined;
    };
    expect(code(() => resolveSharedToken({}, { env: {}, onWarning: w.onWarning }))).toBe('E_AUTH');
    expect(code(() => resolveSharedToken({ token: 'x', tokenFile: tokenFile(STRONG) }, { env: {} }))).toBe('E_CONFIG');
    expect(code(() => resolveSharedToken({ tokenFile: tokenFile('  \n') }, { env: {} }))).toBe('E_CONFIG');
    expect(code(() => resolveSharedToken({ tokenFile: '/nonexistent/dptrain-token' }, { env: {} }))).toBe('E_CONFIG');
  });
});
