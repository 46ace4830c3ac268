import { describe, expect, it } from 'vitest';
import { isDptrainError } from '@dptrain/core';
import { DeadlineError, WorkerLostError, WorkerTaskError } from './peer.js';

describe('the cluster errors', () => {
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
