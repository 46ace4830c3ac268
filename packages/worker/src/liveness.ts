/**
 * The worker's heartbeats, on a thread of their own: a `worker_thread` opens a second connection to the coordinator
 * (authenticated like the main one, role 'liveness'), attaches it to this worker's id with the key from `accepted`,
 * and sends a heartbeat every interval while the main thread makes progress. So one long synchronous kernel on the
 * main thread (a first-step PTX JIT, a big batch, a slow disk) no longer gets a busy worker dropped. The main thread
 * shows progress by `tick()`ing from its event loop; when it has not ticked for `stallLimitMs`, the thread stops
 * beating and closes its connection, and the coordinator declares the worker lost lostAfterMs later (a wedged
 * process); a dead process takes the thread and both connections with it.
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

export interface LivenessOptions {
  url: string;
  token: string;
  /** PEM CA file trusted for wss://. Default: system CAs. */
  ca?: string;
  /** The id the coordinator gave this worker. */
  workerId: string;
  /** The key from the coordinator's `accepted`. */
  key: Uint8Array;
  /** Heartbeat interval in ms. Default 1000. */
  heartbeatIntervalMs?: number;
  /** The main thread counts as wedged after this long without a tick, in ms. Default 600000 (10 min). */
  stallLimitMs?: number;
  /** Lines from the thread (connection trouble, a stall). Default: none. */
  log?: (line: string) => void;
  /** How long `ready` waits for the thread to attach, in ms. Default 60000. */
  readyTimeoutMs?: number;
}

/** What the thread receives as workerData. */
export interface LivenessThreadData {
  url: string;
  token: string;
  ca?: string;
  workerId: string;
  key: Uint8Array;
  heartbeatIntervalMs: number;
  stallLimitMs: number;
  /** Int32Array over it: [0] = main-thread progress counter. */
  progress: SharedArrayBuffer;
}

export interface LivenessHandle {
  /**
   * Settles once the thread has sent its `attach` (true) or could not (false), or after `readyTimeoutMs` (false):
   * wait for it before work that may block the main thread (the worker sends its join after it).
   */
  ready: Promise<boolean>;
  /** The main thread made progress (call from its event loop, e.g. on each of its timer ticks). */
  tick(): void;
  /** Ends the thread and its connection. */
  stop(): Promise<void>;
}

/** Defaults of the liveness thread; `ptxJitStallLimitMs` replaces `stallLimitMs` on a GPU whose first kernels are JIT-compiled. */
export const LIVENESS_DEFAULTS = { heartbeatIntervalMs: 1000, stallLimitMs: 600_000, ptxJitStallLimitMs: 3_600_000, readyTimeoutMs: 60_000 } as const;

/** tsx's ESM loader, for a thread that runs TypeScript sources (this package ships them). */
function tsxLoaderUrl(): string {
  const require = createRequire(import.meta.url);
  const pkgFile = require.resolve('tsx/package.json');
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { exports: Record<string, { import?: { default?: string } }> };
  const entry = pkg.exports['./esm/api']?.import?.default;
  if (!entry) throw new Error('tsx has no ./esm/api export');
  return pathToFileURL(path.join(path.dirname(pkgFile), entry)).href;
}

/** Runs `file` (a .ts or .js module URL) in a worker thread. */
function startThread(file: URL, workerData: unknown): Worker {
  if (file.pathname.endsWith('.js')) return new Worker(file, { workerData });
  const boot = `import(${JSON.stringify(tsxLoaderUrl())}).then(({ register }) => { register(); return import(${JSON.stringify(file.href)}); })`;
  return new Worker(boot, { eval: true, workerData });
}

/** Starts the liveness thread for this worker session. */
export function startLiveness(opts: LivenessOptions): LivenessHandle {
  const progress = new SharedArrayBuffer(4);
  const counter = new Int32Array(progress);
  const data: LivenessThreadData = {
    url: opts.url,
    token: opts.token,
    workerId: opts.workerId,
    key: opts.key,
    heartbeatIntervalMs: opts.heartbeatIntervalMs ?? LIVENESS_DEFAULTS.heartbeatIntervalMs,
    stallLimitMs: opts.stallLimitMs ?? LIVENESS_DEFAULTS.stallLimitMs,
    progress,
    ...(opts.ca ? { ca: opts.ca } : {}),
  };
  const ext = import.meta.url.endsWith('.js') ? 'js' : 'ts';
  const thread = startThread(new URL(`./liveness-thread.${ext}`, import.meta.url), data);
  let settle: (attached: boolean) => void = () => undefined;
  const ready = new Promise<boolean>((resolve) => (settle = resolve));
  const timer = setTimeout(() => settle(false), opts.readyTimeoutMs ?? LIVENESS_DEFAULTS.readyTimeoutMs);
  timer.unref();
  ready.then(
    () => clearTimeout(timer),
    () => undefined,
  );
  thread.on('message', (m: { log?: string; attached?: boolean }) => {
    if (m.log) opts.log?.(m.log);
    if (m.attached !== undefined) settle(m.attached);
  });
  thread.on('error', (e) => {
    opts.log?.(`liveness thread failed: ${e.message}`);
    settle(false);
  });
  thread.on('exit', () => settle(false));
  thread.unref();
  return {
    ready,
    tick: () => void Atomics.add(counter, 0, 1),
    stop: async () => {
      await thread.terminate();
    },
  };
}
