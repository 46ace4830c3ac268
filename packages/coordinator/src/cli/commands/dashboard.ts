import type { Command } from 'commander';

// Placeholder registration: the owning issue replaces this file with the real command.
export function register(program: Command): void {
  program
    .command('dashboard')
    .description('(not built yet)')
    .action(() => {
      throw new Error('dptrain dashboard is not built yet');
    });
}
