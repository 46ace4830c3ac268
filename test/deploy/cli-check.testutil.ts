/**
 * Checks a `dptrain ...` command line from a deploy manifest against the real CLI: the program from
 * `buildProgram()` parses it with every action replaced by a recorder, so nothing runs. Commander itself rejects
 * unknown commands, unknown options, missing required options and bad choices; on top of that every `--flag`
 * must be declared on the subcommand (even if a command allowed unknown options), and the training flags must
 * make a valid RunConfig.
 */
import { CommanderError, type Command, type Option } from 'commander';
import { buildProgram } from '../../packages/cli/src/main.js';
import { toRunConfig, type TrainingFlagValues } from '../../packages/cli/src/training-flags.js';

/** Options of {@link checkDptrainArgs}. */
export interface CliCheckOptions {
  /** Environment the process would have (for options that read env vars, e.g. DPTRAIN_TOKEN). Default: {}. */
  env?: Record<string, string>;
  /** Accept `--help` (the command prints help and stops). Default: false. */
  allowHelp?: boolean;
}

/** Outcome of {@link checkDptrainArgs}. */
export interface CliCheckResult {
  /** Full name of the subcommand that would run (e.g. "worker"), if parsing got that far. */
  command?: string;
  /** Parsed option values of that subcommand. */
  options?: Record<string, unknown>;
  /** Everything wrong with the command line; empty when it is valid. */
  errors: string[];
}

type Internals = { _lifeCycleHooks: Record<string, unknown[]> };

function walk(cmd: Command, visit: (c: Command) => void): void {
  visit(cmd);
  for (const sub of cmd.commands) walk(sub, visit);
}

function pathOf(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** The subcommand named by the leading words of `args`, and how many words named it. */
function findSubcommand(program: Command, args: string[]): { cmd: Command; depth: number } {
  let cmd = program;
  let depth = 0;
  for (const word of args) {
    const sub = cmd.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (!sub) break;
    cmd = sub;
    depth++;
  }
  return { cmd, depth };
}

/** Long option names a command accepts (with `--no-x` negations), plus the global help flag. */
function longFlags(cmd: Command): Map<string, Option> {
  const out = new Map<string, Option>();
  for (const opt of cmd.options as readonly Option[]) if (opt.long) out.set(opt.long, opt);
  return out;
}

/** Statically checks every `--flag` of `rest` against the command's declared options. */
function staticFlagErrors(cmd: Command, rest: string[]): string[] {
  const errors: string[] = [];
  const flags = longFlags(cmd);
  for (let i = 0; i < rest.length; i++) {
    const word = rest[i]!;
    if (word === '--') break;
    if (!word.startsWith('--')) continue;
    const name = word.includes('=') ? word.slice(0, word.indexOf('=')) : word;
    if (name === '--help') continue;
    const opt = flags.get(name);
    if (!opt) {
      errors.push(`'dptrain ${pathOf(cmd)}' has no option ${name}`);
      continue;
    }
    const takesValue = opt.required || opt.optional;
    if (takesValue && !word.includes('=')) {
      const next = rest[i + 1];
      if (opt.required && (next === undefined || next.startsWith('--'))) errors.push(`${name} needs a value`);
      else if (next !== undefined && !next.startsWith('--')) i++;
    }
  }
  return errors;
}

/**
 * Parses `args` (the words after `dptrain`) with the real CLI without running anything.
 * @returns the subcommand, its options and every error found (empty when valid).
 */
export async function checkDptrainArgs(args: string[], options: CliCheckOptions = {}): Promise<CliCheckResult> {
  const program = buildProgram();
  const errors: string[] = [];
  let ran: { cmd: Command; opts: Record<string, unknown> } | undefined;
  walk(program, (c) => {
    c.exitOverride();
    c.configureOutput({ writeOut: () => undefined, writeErr: () => undefined, outputError: () => undefined });
    // Hooks and actions would start real work: replace them with a recorder.
    (c as unknown as Internals)._lifeCycleHooks = {};
    if (c.commands.length === 0) {
      c.action(function (this: Command) {
        ran = { cmd: this, opts: this.opts() };
      });
    }
  });

  const { cmd, depth } = findSubcommand(program, args);
  if (depth === 0 && !(args[0] ?? '').startsWith('-'))
    errors.push(`'${args[0] ?? ''}' is not a dptrain command (${program.commands.map((c) => c.name()).join(', ')})`);
  else errors.push(...staticFlagErrors(cmd, args.slice(depth)));

  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(options.env ?? {})) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (!(options.allowHelp && err.code === 'commander.helpDisplayed')) errors.push(`${err.code}: ${err.message}`);
    } else {
      errors.push(String(err));
    }
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }

  if (ran) {
    const flags = longFlags(ran.cmd);
    // Commands with the training flags must turn them into a valid RunConfig.
    if (flags.has('--backbone') && flags.has('--batch-size') && flags.has('--data')) {
      try {
        toRunConfig(ran.opts as unknown as TrainingFlagValues);
      } catch (err) {
        errors.push(`training flags do not make a valid RunConfig: ${(err as Error).message}`);
      }
    }
    return { command: pathOf(ran.cmd), options: ran.opts, errors: [...new Set(errors)] };
  }
  if (!options.allowHelp && errors.length === 0) errors.push('no dptrain command would run');
  return { errors: [...new Set(errors)] };
}

/** Replaces `$(VAR)`, `${VAR}`, `${VAR:-default}`, `${VAR-default}` and `$VAR` using `vars`; unknown names are errors. */
export function expandVars(word: string, vars: Record<string, string>, missing: string[] = []): string {
  return word.replace(
    /\$\(([A-Za-z_][A-Za-z0-9_]*)\)|\$\{([A-Za-z_][A-Za-z0-9_]*)(:?-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (m, k8s, braced, dflt, dfltValue, bare) => {
      const name = (k8s ?? braced ?? bare) as string;
      const value = vars[name];
      if (value !== undefined && !(dflt?.startsWith(':') && value === '')) return value;
      if (dflt !== undefined) return dfltValue as string;
      missing.push(name);
      return m;
    },
  );
}
