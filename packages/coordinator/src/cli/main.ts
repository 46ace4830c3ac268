import { Command } from 'commander';
import { register as registerTrain } from './commands/train.js';
import { register as registerPredict } from './commands/predict.js';
import { register as registerDemo } from './commands/demo.js';
import { register as registerSingle } from './commands/single.js';
import { register as registerCoordinator } from './commands/coordinator.js';
import { register as registerWorker } from './commands/worker.js';
import { register as registerDashboard } from './commands/dashboard.js';
import { register as registerExport } from './commands/export.js';
import { register as registerDoctor } from './commands/doctor.js';

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
  registerDashboard(program);
  registerExport(program);
  registerDoctor(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    const e = err as { code?: string; message?: string };
    process.stderr.write(`dptrain: ${e.code ? `[${e.code}] ` : ''}${e.message ?? String(err)}\n`);
    process.exitCode = 1;
  }
}
