import { spawn, type ChildProcess } from 'node:child_process';
import { DPTRAIN_BIN } from './local-workers.js';

export interface LocalShardOptions {
  /** Coordinator URL. */
  url: string;
  /** Shared secret, passed in the environment (DPTRAIN_TOKEN), never on the command line. */
  token: string;
  /** Address the shard serves senders on (`--listen`; port 0: a free one). Default '127.0.0.1:0'. */
  listen?: string;
  /** Where the child's stdout and stderr go. Default 'inherit'. */
  stdio?: 'inherit' | 'ignore' | 'pipe';
  /** Extra `dptrain shard` arguments. Default: none. */
  args?: string[];
  /** Extra environment (e.g. DPTRAIN_NATIVE_OPTIMIZER=0). Default: none. */
  env?: Record<string, string>;
}

/**
 * Starts a local `dptrain shard` process, on loopback unless `listen` says otherwise (for `single --shards S`, and
 * beside an agent for `--shards auto`): like a local worker, it exits by
 * itself when this process dies (stdin pipe + `--exit-with-parent`) and runs in its own process group.
 */
export function spawnLocalShard(opts: LocalShardOptions): ChildProcess {
  const out = opts.stdio ?? 'inherit';
  return spawn(
    process.execPath,
    [DPTRAIN_BIN, 'shard', '--connect', opts.url, '--listen', opts.listen ?? '127.0.0.1:0', '--exit-with-parent', ...(opts.args ?? [])],
    {
      env: { ...process.env, ...opts.env, DPTRAIN_TOKEN: opts.token },
      stdio: ['pipe', out, out],
      detached: true,
    },
  );
}
