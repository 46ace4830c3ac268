import type { Command } from 'commander';

// Placeholder registration: the owning issue replaces this file with the real command.
export function register(program: Command): void {
  program
    .command('coordinator')
    .description('(not built yet)')
    .action(() => {
      throw new Error('dptrain coordinator is not built yet');
    });
}
