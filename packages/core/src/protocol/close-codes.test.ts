import { describe, expect, it } from 'vitest';
import { CLOSE_CODES, closeCodeFor } from './close-codes.js';

describe('close codes', () => {
  it('one table maps every error code to the close code of a refused connection', () => {
    // refusals (bad frames, authentication, hashes, capacity): 1008, which a worker before auth reads as a refusal
    for (const code of ['E_AUTH', 'E_PROTOCOL_SCHEMA', 'E_BASE_HASH', 'E_BATCH_CAPACITY', 'E_GRADIENT_NORM']) expect(closeCodeFor(code)).toBe(1008);
    expect(closeCodeFor('E_OVERLOAD')).toBe(CLOSE_CODES.tryAgainLater);
    expect(closeCodeFor('E_INTERNAL')).toBe(CLOSE_CODES.internalError);
    expect(closeCodeFor('E_STOPPED')).toBe(CLOSE_CODES.goingAway);
    expect(closeCodeFor('E_NOT_A_CODE')).toBe(CLOSE_CODES.policyViolation);
  });
});
