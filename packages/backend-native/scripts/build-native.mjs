#!/usr/bin/env node
// Builds the optional oneDNN addon (build/Release/dptrain_native.node) with node-gyp.
// Never fails the caller unless --strict: without libdnnl-dev it prints why and exits 0, so
// `npm test` / `npm start` (which run it as a pre-script) work on machines without oneDNN.
// Usage: node packages/backend-native/scripts/build-native.mjs [--force] [--strict] [--quiet]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const pkgDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const addon = path.join(pkgDir, 'build', 'Release', 'dptrain_native.node');
// every native source and header (a file added under native/ rebuilds too), and the build file
const sources = [...fs.readdirSync(path.join(pkgDir, 'native')).map((f) => path.join('native', f)), 'binding.gyp'].map((f) => path.join(pkgDir, f));
const args = new Set(process.argv.slice(2));
const strict = args.has('--strict');
const quiet = args.has('--quiet');
const log = (msg) => {
  if (!quiet) process.stderr.write(`dptrain native: ${msg}\n`);
};
const done = (ok, msg) => {
  log(msg);
  process.exit(ok || !strict ? 0 : 1);
};

if (process.env.DPTRAIN_NATIVE_BUILD === '0') done(false, 'build disabled by DPTRAIN_NATIVE_BUILD=0');

function upToDate() {
  if (!fs.existsSync(addon)) return false;
  const built = fs.statSync(addon).mtimeMs;
  return sources.every((s) => fs.statSync(s).mtimeMs <= built);
}

if (!args.has('--force') && upToDate()) done(true, 'addon up to date');

const { find } = require('./find-dnnl.cjs');
if (!find())
  done(
    false,
    'oneDNN not found (no dnnl.hpp + libdnnl.so' +
      (process.env.DNNL_ROOT ? ` under DNNL_ROOT=${process.env.DNNL_ROOT}` : '') +
      '); native backend skipped, dptrain runs on wasm. ' +
      'For the fast CPU backend: apt-get install libdnnl-dev, then npm run build:native',
  );

function nodeGyp() {
  const cands = [
    process.env.npm_config_node_gyp,
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  try {
    cands.push(require.resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    /* not installed locally */
  }
  return cands.find((c) => c && fs.existsSync(c));
}
const gyp = nodeGyp();
if (!gyp) done(false, 'node-gyp not found (it ships with npm); skipping the native build');

// Use the headers that ship with this node when present: no download needed (offline CI).
const prefix = path.resolve(path.dirname(process.execPath), '..');
const gypArgs = [gyp, 'rebuild', '-j', 'max', '--loglevel=warn'];
if (fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) gypArgs.push(`--nodedir=${prefix}`);

// One build at a time (workers may call registerNativeBackend() concurrently).
const lock = path.join(pkgDir, '.build.lock');
const start = Date.now();
for (;;) {
  try {
    fs.mkdirSync(lock);
    break;
  } catch {
    if (Date.now() - start > 300_000) {
      fs.rmSync(lock, { recursive: true, force: true });
      continue;
    }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
  }
}
try {
  if (!args.has('--force') && upToDate()) done(true, 'addon built by another process');
  log(`building with ${path.basename(gyp)} (${gypArgs.slice(1).join(' ')}) ...`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, gypArgs, { cwd: pkgDir, stdio: quiet ? 'pipe' : ['ignore', 'inherit', 'inherit'], encoding: 'utf8' });
  if (r.status !== 0 || !fs.existsSync(addon)) {
    if (quiet && r.stderr) process.stderr.write(r.stderr.slice(-4000));
    fs.rmSync(lock, { recursive: true, force: true });
    done(false, `node-gyp failed (exit ${r.status}); the native backend stays unavailable`);
  }
  fs.rmSync(lock, { recursive: true, force: true });
  done(true, `built ${path.relative(process.cwd(), addon)} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
} finally {
  fs.rmSync(lock, { recursive: true, force: true });
}
