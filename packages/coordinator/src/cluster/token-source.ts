import { readFileSync, statSync } from 'node:fs';
import { DptrainError, tokenWeakness } from '@dptrain/core';
import { tokenFromEnv } from '../env.js';

/** Where a command may take the shared secret from. */
export interface TokenSource {
  /** --token (shows in `ps`: prefer --token-file or DPTRAIN_TOKEN). */
  token?: string;
  /** --token-file: a file holding the secret (surrounding whitespace and the final newline are dropped). */
  tokenFile?: string;
}

export interface ResolveSharedTokenOptions {
  /** Environment to read DPTRAIN_TOKEN from. Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Told about a weak secret or a token file others can read. Default: a line on stderr. */
  onWarning?: (message: string) => void;
}

/**
 * The shared secret from --token-file, else --token, else $DPTRAIN_TOKEN. Throws E_CONFIG when both flags are
 * given or the file cannot be read or is empty, E_AUTH when there is none. Warns (never failing) when the secret
 * is weak (short or low entropy) or the token file is readable by group or others.
 */
export function resolveSharedToken(source: TokenSource, options: ResolveSharedTokenOptions = {}): string {
  const warn = options.onWarning ?? ((m: string) => process.stderr.write(`dptrain: warning: ${m}\n`));
  if (source.token !== undefined && source.tokenFile !== undefined) {
    throw new DptrainError('E_CONFIG', '--token and --token-file both given: pass one');
  }
  let token: string | undefined;
  if (source.tokenFile !== undefined) {
    const file = source.tokenFile;
    try {
      token = readFileSync(file, 'utf8').trim();
      const mode = statSync(file).mode;
      if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
        warn(`token file ${file} is readable by others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
      }
    } catch (e) {
      throw new DptrainError('E_CONFIG', `--token-file ${file}: cannot read it: ${(e as Error).message}`, undefined, { cause: e });
    }
    if (token === '') throw new DptrainError('E_CONFIG', `--token-file ${file} is empty`);
  } else {
    token = source.token ?? tokenFromEnv(options.env);
  }
  if (!token) throw new DptrainError('E_AUTH', 'no shared secret: pass --token-file, set DPTRAIN_TOKEN, or pass --token');
  const weak = tokenWeakness(token);
  if (weak) warn(weak);
  return token;
}
