import { Command, CommanderError } from 'commander';
import { debugFromEnv, labelTfErrors } from '@dptrain/core';
import { kernelFaultFromEnv, setDebugForChildren } from './env.js';
import { formatCliError } from './report-error.js';
import { register as registerTrain } from './commands/train.js';
import { register as registerPredict } from './commands/predict.js';
import { register as registerDemo } from './commands/demo.js';
import { register as registerSingle } from './commands/single.js';
import { register as registerCoordinator } from './commands/coordinator.js';
import { register as registerWorker } from './commands/worker.js';
import { register as registerDashboard } from './commands/dashboard.js';
import { register as registerExport } from './commands/export.js';
import { register as registerDoctor } from './commands/doctor.js';
import { register as registerShard } from './commands/shard.js';

/** Builds the `dptrain` program (exported for tests that check deploy command lines against it). */
export function buildProgram(): Command {
  const program = new Command('dptrain')
    .description('Distributed data-parallel VGG16 transfer learning for scene classification')
    .showHelpAfterError()
    .enablePositionalOptions();
  registerTrain(program);
  registerPredict(program);
  registerDemo(program);
  registerSingle(program);
  registerCoordinator(program);
  registerWorker(program);
  registerShard(program);
  registerDashboard(program);
  registerExport(program);
  registerDoctor(program);
  return program;
}

/** Gives every command `--verbose` (the stack of an internal error), passed on to child processes as DPTRAIN_DEBUG=1. */
function addVerboseOption(program: Command): Command {
  for (const cmd of program.commands) cmd.option('--verbose', 'on an unexpected (internal) error, print its stack; same as DPTRAIN_DEBUG=1');
  program.hook('preAction', (_program, action) => {
    if (action.opts().verbose) setDebugForChildren();
  });
  return program;
}

/** Prints how `err` ended the command (last line `dptrain: [CODE] message`) and sets a failing exit code. */
function report(err: unknown, verbose: boolean): void {
  process.stderr.write(formatCliError(err, { verbose }).join('\n') + '\n');
  process.exitCode = 1;
}

/**
 * Runs the CLI. Every failure ends with one line `dptrain: [CODE] message` on stderr and exit code 1: dptrain's
 * own errors keep their code, command-line mistakes are E_USAGE, anything unexpected E_INTERNAL with where it
 * happened (and its stack with --verbose or DPTRAIN_DEBUG=1). Help and --version exit 0.
 */
export async function main(argv: string[]): Promise<void> {
  const verbose = (): boolean => debugFromEnv() || argv.slice(2).includes('--verbose');
  const faultKernel = kernelFaultFromEnv();
  labelTfErrors(faultKernel ? { faultKernel } : {});
  const crash = (err: unknown): void => {
    report(err, verbose());
    process.exit(1);
  };
  process.prependListener('uncaughtException', crash); // first: the wasm backend adds listeners that rethrow
  process.prependListener('unhandledRejection', crash);
  const program = addVerboseOption(buildProgram());
  let usage = '';
  for (const cmd of [program, ...program.commands]) {
    cmd.exitOverride();
    // commander's own "error: ..." line is replaced by ours (its help text after the error still prints)
    cmd.configureOutput({
      outputError: (text) =>
        void (usage = text
          .trim()
          .replace(/^error: /, '')
          .replace(/\s*\n\s*/g, ' ')),
    });
  }
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return; // --help, --version
      process.stderr.write(`dptrain: [E_USAGE] ${usage || err.message.replace(/^error: /, '')}\n`);
      process.exitCode = 1;
      return;
    }
    report(err, verbose());
  }
}
