import { DptrainError } from '@dptrain/core';

/** A flag's whole-number value of at least `min` (restarts, workers); else E_CONFIG naming the flag. */
export function countFlag(value: string, flag: string, min = 0): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new DptrainError('E_CONFIG', `${flag}: '${value}' is not a count${min > 0 ? ` of ${min} or more` : ''}`);
  return n;
}
