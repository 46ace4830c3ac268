import { DptrainError } from '@dptrain/core';

/** The @dptrain/dashboard module (the terminal dashboard, logs, metrics, charts). */
export type DashboardModule = typeof import('@dptrain/dashboard');

/**
 * Loads @dptrain/dashboard when a command shows a run, not when the CLI starts: the worker image installs only
 * what `dptrain worker` runs (no @dptrain/dashboard, ink, react or prom-client), so there the commands that show a run
 * (single, coordinator, dashboard, demo) fail with E_CONFIG naming the missing package.
 */
export async function loadDashboard(command: string): Promise<DashboardModule> {
  try {
    return await import('@dptrain/dashboard');
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') throw err;
    throw new DptrainError(
      'E_CONFIG',
      `dptrain ${command} needs @dptrain/dashboard, which this installation leaves out (the worker image runs \`dptrain worker\` only): use the full (CPU) image or \`npm ci\``,
      undefined,
      { cause: err },
    );
  }
}
