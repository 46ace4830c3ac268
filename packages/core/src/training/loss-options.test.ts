import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseRunConfig } from '../config.js';
import { isDptrainError } from '../errors.js';
import { balancedClassWeights, resolveClassWeights } from './class-weights.js';
import { createReplica } from './replica.js';
import { samplesOf, syntheticImages, tinyConfig } from './replica.testutil.js';

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

describe('class weights (Keras class_weight, balanced as scikit-learn)', () => {
  it("'auto' is n / (C · n_c) of the training split; an explicit list needs one weight per class", () => {
    expect(balancedClassWeights([0, 0, 0, 1, 2, 2], 3)).toEqual([6 / 9, 6 / 3, 6 / 6]);
    const config = parseRunConfig({ dataDir: '/d', classWeight: 'auto' });
    const train = [0, 0, 1, 1, 1, 1].map((label, index) => ({ split: 'labelled' as const, index, name: `${index}`, path: '', label }));
    expect(resolveClassWeights(config, train, 2).classWeight).toEqual([1.5, 0.75]);
    let code = '';
    try {
      resolveClassWeights(parseRunConfig({ dataDir: '/d', classWeight: [1, 2] }), train, 3);
    } catch (e) {
      code = isDptrainError(e) ? `${e.code} ${e.message}` : String(e);
    }
    expect(code).toMatch(/E_CONFIG --class-weight: 2 weights for 3 classes/);
  });

  it("the loss is the mean over samples of each sample's cross-entropy times its class's weight", async () => {
    const weights = [0.5, 2, 1.25];
    const samples = samplesOf(6);
    const weighted = await createReplica(tinyConfig({ classWeight: weights, tta: 'none', head: { units: 16, dropout: 0 } }), { images: syntheticImages });
    const probs = await weighted.predict(samples);
    let ref = 0;
    samples.forEach((s, i) => (ref -= weights[s.label]! * Math.log(probs[i * 3 + s.label]!)));
    ref /= samples.length;
    const g = await weighted.computeGradients(samples, { phase: 'head', epoch: 0, step: 0 });
    expect(g.loss).toBeCloseTo(ref, 5);
    // logits' bias gradient: mean of w_y (p - onehot)
    const b = g.gradients.length - 3;
    for (let k = 0; k < 3; k++) {
      let want = 0;
      samples.forEach((s, i) => (want += weights[s.label]! * (probs[i * 3 + k]! - (k === s.label ? 1 : 0))));
      expect(g.gradients[b + k]!).toBeCloseTo(want / samples.length, 5);
    }
    weighted.dispose();
  });
});
