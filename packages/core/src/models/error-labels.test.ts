import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { describeErrorContext, describeUnexpectedError, errorContext } from '../util/error-context.js';
import { labelTfErrors } from './error-labels.js';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('labelTfErrors: errors thrown inside tfjs name their layer and kernel', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
    labelTfErrors({ faultKernel: 'Relu' });
  });

  it('a real kernel error (cpu GatherV2, index out of range) inside a layer names both', () => {
    const embed = tf.layers.embedding({ inputDim: 2, outputDim: 3, name: 'lookup' });
    const err = thrown(() => embed.apply(tf.tensor2d([[5]], [1, 1], 'int32')));
    expect(String((err as Error).message)).toMatch(/GatherV2/);
    expect(errorContext(err)).toEqual({ layer: 'lookup (Embedding)', kernels: ['GatherV2'] });
    expect(describeUnexpectedError(err)).toMatch(/^Error: .*\(layer lookup \(Embedding\), kernel GatherV2\)$/);
  });

  it('a kernel run outside any layer names the kernel only; nested layers keep the innermost', () => {
    const err = thrown(() => tf.gather(tf.tensor1d([1, 2]), tf.tensor1d([7], 'int32')));
    expect(errorContext(err)).toEqual({ kernels: ['GatherV2'] });
    const input = tf.input({ shape: [1], dtype: 'int32' });
    const inner = tf.model({
      inputs: input,
      outputs: tf.layers.embedding({ inputDim: 2, outputDim: 3, name: 'inner_lookup' }).apply(input) as tf.SymbolicTensor,
      name: 'outer',
    });
    const nested = thrown(() => inner.predict(tf.tensor2d([[9]], [1, 1], 'int32')));
    expect(errorContext(nested).layer).toBe('inner_lookup (Embedding)');
  });

  it('the test fault throws only while gradients are recorded (a training step), not in a forward pass', () => {
    const x = tf.tensor2d([[1, -2]]);
    expect(() => tf.relu(x)).not.toThrow();
    const dense = tf.layers.dense({ units: 2, activation: 'relu', name: 'hidden' });
    dense.apply(x);
    const err = thrown(() => tf.variableGrads(() => (dense.apply(x) as tf.Tensor).sum() as tf.Scalar));
    expect(err).toBeInstanceOf(TypeError);
    expect(describeErrorContext(errorContext(err))).toBe('layer hidden (Dense), kernel Relu');
  });

  it('is idempotent: a second call wraps nothing twice', () => {
    labelTfErrors();
    const err = thrown(() => tf.gather(tf.tensor1d([1, 2]), tf.tensor1d([7], 'int32')));
    expect(errorContext(err)).toEqual({ kernels: ['GatherV2'] });
  });
});
