/**
 * The GPU (worker) image installs only what `dptrain worker` runs: the workspaces its `npm ci -w ...` names and
 * their production dependencies, resolved through package-lock.json as npm does, hold every dependency of the CLI
 * but the dashboard (no ink, react, prom-client); and the CLI runs `dptrain worker` where @dptrain/dashboard cannot
 * be found.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DPTRAIN_BIN, REPO_ROOT } from '../helpers/cli.testutil.js';
import { processesWith } from '../helpers/processes.testutil.js';

interface LockEntry {
  name?: string;
  link?: boolean;
  resolved?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

const lock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };

/** Where node (and npm) finds `dep` from the package at lock path `from`: the nearest node_modules up the tree. */
function locate(from: string, dep: string): string | undefined {
  let dir = from;
  for (;;) {
    const candidate = `${dir ? `${dir}/` : ''}node_modules/${dep}`;
    if (lock.packages[candidate]) return candidate;
    if (!dir) return undefined;
    const i = dir.lastIndexOf('/node_modules/');
    dir = i >= 0 ? dir.slice(0, i) : '';
  }
}

/** Package names installed by `npm ci --omit=dev --include=optional -w <workspaces>`. */
function installedFor(workspaces: string[]): Set<string> {
  const names = new Set<string>();
  const seen = new Set<string>();
  const todo = workspaces.map((w) => Object.entries(lock.packages).find(([p, e]) => !p.includes('node_modules') && e.name === w)![0]);
  while (todo.length) {
    let at = todo.pop()!;
    const entry = lock.packages[at]!;
    if (entry.link && entry.resolved) at = entry.resolved;
    if (seen.has(at)) continue;
    seen.add(at);
    const e = lock.packages[at]!;
    const optionalPeers = new Set(Object.entries(e.peerDependenciesMeta ?? {}).flatMap(([n, m]) => (m.optional ? [n] : [])));
    const deps = [...Object.keys(e.dependencies ?? {}), ...Object.keys(e.optionalDependencies ?? {})];
    deps.push(...Object.keys(e.peerDependencies ?? {}).filter((n) => !optionalPeers.has(n)));
    for (const dep of deps) {
      const found = locate(at, dep);
      if (!found) continue; // an optional dependency for another platform
      names.add(dep);
      todo.push(found);
    }
  }
  for (const w of workspaces) names.add(w);
  return names;
}

describe('the GPU worker image', () => {
  const text = readFileSync(join(REPO_ROOT, 'deploy/docker/gpu.Dockerfile'), 'utf8');
  const install = /RUN npm ci ([\s\S]*?)&&/.exec(text)?.[1] ?? '';
  const workspaces = [...install.matchAll(/-w (\S+)/g)].map((m) => m[1]!);

  it('installs the worker and every dependency of the CLI but the dashboard, and no ink, react or prom-client', () => {
    expect(workspaces).toContain('@dptrain/worker');
    const installed = installedFor(workspaces);
    const cli = JSON.parse(readFileSync(join(REPO_ROOT, 'packages/cli/package.json'), 'utf8')) as { dependencies: Record<string, string> };
    for (const needed of Object.keys(cli.dependencies).filter((d) => d !== '@dptrain/dashboard')) expect(installed, needed).toContain(needed);
    for (const left of ['@dptrain/dashboard', 'ink', 'react', 'prom-client']) expect(installed, left).not.toContain(left);
    // the same walk over the whole CLI (a full install) does find the dashboard: the check can fail
    expect(installedFor([...workspaces, '@dptrain/dashboard'])).toContain('ink');
  });

  it('runs `dptrain worker` without @dptrain/dashboard; a command that shows a run says what is missing', () => {
    const hook = join(REPO_ROOT, 'test/deploy/without-dashboard.mjs');
    const run = (args: string[]) =>
      spawnSync(process.execPath, ['--import', hook, DPTRAIN_BIN, ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 });
    const help = run(['worker', '--help']);
    expect(help.stderr).toBe('');
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/--connect <url>/);
    const single = run(['single', '--workers', '0', '--data', join(REPO_ROOT, 'no-such-data')]);
    expect(single.status).toBe(1);
    expect(single.stderr).toMatch(/dptrain: \[E_CONFIG\] dptrain single needs @dptrain\/dashboard/);
    expect(processesWith('without-dashboard.mjs')).toEqual([]);
  });
});
