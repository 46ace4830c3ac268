import { describe, expect, it } from 'vitest';
import { isDptrainError } from '@dptrain/core';
import { CLOSE_CODES, closeCodeFor } from './close-codes.js';
import { DeadlineError, WorkerLostError, WorkerTaskError } from './peer.js';

describe('close codes and the cluster errors', () => {
  it('one table maps every error code to the close code of a refused connection', () => {
    // refusals (bad frames, authentication, hashes, capacity): 1008, which a worker before auth reads as a refusal
    for (const code of ['E_AUTH', 'E_PROTOCOL_SCHEMA', 'E_BASE_HASH', 'E_BATCH_CAPACITY', 'E_GRADIENT_NORM']) expect(closeCodeFor(code)).toBe(1008);
    expect(closeCodeFor('E_OVERLOAD')).toBe(CLOSE_CODES.tryAgainLater);
    expect(closeCodeFor('E_INTERNAL')).toBe(CLOSE_CODES.internalError);
    expect(closeCodeFor('E_STOPPED')).toBe(CLOSE_CODES.goingAway);
    expect(closeCodeFor('E_NOT_A_CODE')).toBe(CLOSE_CODES.policyViolation);
  });

  it('WorkerLostError, DeadlineError and WorkerTaskError carry stable codes', () => {
    const lost = new WorkerLostError('w1', 'socket closed');
    expect(isDptrainError(lost, 'E_WORKER_LOST')).toBe(true);
    expect(lost.message).toBe('worker w1 lost: socket closed');
    expect(isDptrainError(new DeadlineError('w2', 'step request 3', 1500), 'E_TIMEOUT')).toBe(true);
    // a worker's own code is kept (relayed by the CLI); an unexpected failure is E_WORKER (reported as internal)
    const task = new WorkerTaskError('w3', 'E_DATA_IMAGE', 'cannot decode 7.jpg');
    expect(isDptrainError(task, 'E_DATA_IMAGE')).toBe(true);
    expect(task.message).toBe('worker w3 failed a task [E_DATA_IMAGE]: cannot decode 7.jpg');
    expect(isDptrainError(new WorkerTaskError('w3', 'E_WORKER', 'TypeError: x'), 'E_WORKER')).toBe(true);
  });
});
