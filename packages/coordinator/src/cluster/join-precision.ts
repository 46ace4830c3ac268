import { DptrainError, type RunConfig } from '@dptrain/core';

/**
 * A joining worker must compute in the run's precision, so a cluster of mixed CPUs never mixes precisions. Throws
 * E_PRECISION (the worker is refused, with the reason it gave) when it runs another one or could not set it.
 * A run config still at 'auto' (a server started without runCoordinator's resolution) accepts what each worker says.
 */
export function checkJoinPrecision(
  runPrecision: RunConfig['precision'],
  workerId: string,
  join: { host: string; backend: string; precision?: string | undefined; precisionError?: string | undefined },
): void {
  if (runPrecision === 'auto') return;
  const runs = join.precision ?? 'fp32';
  if (runs === runPrecision && join.precisionError === undefined) return;
  const why = join.precisionError ?? `it runs ${runs}`;
  const hint = runPrecision === 'bf16' ? ' (start the coordinator with --precision fp32 to admit workers without bf16)' : '';
  throw new DptrainError(
    'E_PRECISION',
    `worker ${workerId} (${join.host}, backend ${join.backend}) cannot run this run's precision ${runPrecision}: ${why}${hint}`,
    { workerId, runPrecision, workerPrecision: join.precision ?? null },
  );
}
