import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { createReplica } from './replica.js';
import { samplesOf, syntheticImages, tinyConfig } from './replica-testing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('label smoothing (Keras formula)', () => {
  it('the training loss is the cross-entropy against y·(1-ε) + ε/C of the predicted probabilities', async () => {
    const eps = 0.2;
    const samples = samplesOf(6);
    const smooth = await createReplica(tinyConfig({ labelSmoothing: eps, tta: 'none', head: { units: 16, dropout: 0 } }), { images: syntheticImages });
    const plain = await createReplica(tinyConfig({ tta: 'none', head: { units: 16, dropout: 0 } }), { images: syntheticImages });
    plain.setWeights(smooth.getWeights());
    const probs = await smooth.predict(samples);
    const c = 3;
    let ref = 0;
    let hard = 0;
    samples.forEach((s, i) => {
      for (let k = 0; k < c; k++) {
        const t = (k === s.label ? 1 : 0) * (1 - eps) + eps / c;
        ref -= t * Math.log(probs[i * c + k]!);
        if (k === s.label) hard -= Math.log(probs[i * c + k]!);
      }
    });
    ref /= samples.length;
    hard /= samples.length;
    const g = await smooth.computeGradients(samples, { phase: 'head', epoch: 0, step: 0 });
    const h = await plain.computeGradients(samples, { phase: 'head', epoch: 0, step: 0 });
    expect(g.loss).toBeCloseTo(ref, 5);
    expect(h.loss).toBeCloseTo(hard, 5);
    expect(g.loss).not.toBeCloseTo(h.loss, 3);
    // the gradient of the logits' bias is mean(p - t): check it against the smoothed targets
    const biasStart = g.gradients.length - c;
    for (let k = 0; k < c; k++) {
      let want = 0;
      samples.forEach((s, i) => (want += probs[i * c + k]! - ((k === s.label ? 1 : 0) * (1 - eps) + eps / c)));
      expect(g.gradients[biasStart + k]!).toBeCloseTo(want / samples.length, 5);
    }
    smooth.dispose();
    plain.dispose();
  });
});
