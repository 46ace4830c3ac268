import { DptrainError } from '@dptrain/core';

/**
 * A worker's `--batch-capacity` must hold one micro-batch: parts are whole micro-batches (nodes of the averaging
 * tree), so a smaller capacity could never be given work. E_BATCH_CAPACITY names the worker otherwise.
 */
export function checkJoinCapacity(microBatch: number, who: string, batchCapacity: number): void {
  if (microBatch > 0 && batchCapacity < microBatch) {
    throw new DptrainError(
      'E_BATCH_CAPACITY',
      `${who}: batch capacity ${batchCapacity} is below the micro-batch of ${microBatch} samples (raise its --batch-capacity or lower --micro-batch)`,
    );
  }
}
