import { describe, expect, it } from 'vitest';
import { addErrorContext, addKernelToError, describeErrorContext, describeUnexpectedError, errorContext, withErrorContext } from './error-context.js';

describe('error context', () => {
  it('inner fields win; kernels stack innermost first; a thrown string becomes an Error', async () => {
    const e = addKernelToError(new TypeError('boom'), 'Identity');
    addKernelToError(e, 'AvgPool');
    addErrorContext(e, { layer: 'mixed0_pool (AveragePooling2D)' });
    addErrorContext(e, { layer: 'model (Functional)', phase: 'fine_tune', step: 7 });
    const caught = await withErrorContext({ phase: 'head', epoch: 2, step: 99 }, async () => {
      throw e;
    }).catch((x: unknown) => x);
    expect(caught).toBe(e);
    expect(errorContext(e)).toEqual({ kernels: ['Identity', 'AvgPool'], layer: 'mixed0_pool (AveragePooling2D)', phase: 'fine_tune', step: 7, epoch: 2 });
    expect(describeErrorContext(errorContext(e))).toBe(
      'phase fine_tune, epoch 2, step 7, layer mixed0_pool (AveragePooling2D), kernel Identity (inside AvgPool)',
    );
    expect(describeUnexpectedError(e)).toBe(
      'TypeError: boom (phase fine_tune, epoch 2, step 7, layer mixed0_pool (AveragePooling2D), kernel Identity (inside AvgPool))',
    );
    const s = addErrorContext('plain string', { task: 'test prediction' });
    expect(s).toBeInstanceOf(Error);
    expect(describeUnexpectedError(s)).toBe('Error: plain string (test prediction)');
    expect(describeUnexpectedError(new RangeError('x'))).toBe('RangeError: x');
  });
});
