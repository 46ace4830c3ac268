import { describe, expect, it } from 'vitest';
import { DptrainError, addErrorContext } from '@dptrain/core';
import { formatCliError, workerFailureLine } from './report-error.js';

describe('formatCliError', () => {
  it('a DptrainError keeps its code and message', () => {
    expect(formatCliError(new DptrainError('E_DATA_LAYOUT', '/x: nothing to predict'))).toEqual(['dptrain: [E_DATA_LAYOUT] /x: nothing to predict']);
  });

  it('an unexpected error is internal, says where and how to see the stack; --verbose prints the stack above', () => {
    const err = addErrorContext(new TypeError("Cannot read properties of undefined (reading 'dataId')"), {
      phase: 'fine_tune',
      epoch: 1,
      step: 12,
      layer: 'mixed1 (Concatenate)',
      kernels: ['Identity', 'Concat'],
    });
    expect(formatCliError(err)).toEqual([
      "dptrain: [E_INTERNAL] internal error in phase fine_tune, epoch 1, step 12, layer mixed1 (Concatenate), kernel Identity (inside Concat): TypeError: Cannot read properties of undefined (reading 'dataId') (run again with --verbose or DPTRAIN_DEBUG=1 to see its stack)",
    ]);
    const lines = formatCliError(err, { verbose: true });
    expect(lines[0]).toMatch(/^TypeError: Cannot read properties[\s\S]*\n\s+at /);
    expect(lines.at(-1)).toMatch(/^dptrain: \[E_INTERNAL\] internal error in phase fine_tune.*\(stack above\)$/);
    expect(formatCliError(new Error('no context'))).toEqual([
      'dptrain: [E_INTERNAL] internal error: Error: no context (run again with --verbose or DPTRAIN_DEBUG=1 to see its stack)',
    ]);
  });

  it('an OS error is E_IO; a relayed coded error keeps its code; a worker failure (E_WORKER) stays internal', () => {
    const io = Object.assign(new Error("ENOTDIR: not a directory, mkdir '/etc/hostname/run'"), { code: 'ENOTDIR', syscall: 'mkdir' });
    expect(formatCliError(io)).toEqual(["dptrain: [E_IO] ENOTDIR: not a directory, mkdir '/etc/hostname/run'"]);
    const relayed = Object.assign(new Error('worker w1 failed a task [E_DATA_IMAGE]: cannot decode a.jpg'), { code: 'E_DATA_IMAGE' });
    expect(formatCliError(relayed)[0]).toBe('dptrain: [E_DATA_IMAGE] worker w1 failed a task [E_DATA_IMAGE]: cannot decode a.jpg');
    const worker = Object.assign(new Error('worker w1 failed a task [E_WORKER]: TypeError: x'), { code: 'E_WORKER' });
    expect(formatCliError(worker)[0]).toMatch(/^dptrain: \[E_INTERNAL\] internal error: Error: worker w1 failed a task \[E_WORKER\]/);
  });
});

describe('workerFailureLine', () => {
  it('a refused or given-up worker ends with a coded line', () => {
    expect(workerFailureLine({ reason: 'refused', detail: 'E_AUTH: coordinator refused this worker: bad token' })).toBe(
      'dptrain: [E_AUTH] worker refused: coordinator refused this worker: bad token',
    );
    expect(workerFailureLine({ reason: 'gave_up', detail: 'no coordinator at ws://x:1' })).toBe(
      'dptrain: [E_TIMEOUT] worker gave up: no coordinator at ws://x:1',
    );
  });
});
