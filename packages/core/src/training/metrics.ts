import { DptrainError } from '../errors.js';

export interface ClassMetrics {
  /** Class name. */
  name: string;
  precision: number;
  recall: number;
  f1: number;
  /** Number of samples whose true class this is. */
  support: number;
}

export interface EvaluationMetrics {
  /** Mean categorical cross-entropy (probabilities clipped to [1e-7, 1-1e-7], as Keras does). */
  loss: number;
  accuracy: number;
  /** Number of samples evaluated. */
  count: number;
  /** confusion[true][predicted] counts. */
  confusion: number[][];
  perClass: ClassMetrics[];
  /** Unweighted means over classes. */
  macro: { precision: number; recall: number; f1: number };
}

/** Index of the largest value of each row of a row-major N x C matrix. */
export function argmaxRows(probs: Float32Array, numClasses: number): number[] {
  const n = Math.floor(probs.length / numClasses);
  const out: number[] = new Array(n);
  for (let r = 0; r < n; r++) {
    let best = 0;
    let bestV = -Infinity;
    for (let c = 0; c < numClasses; c++) {
      const v = probs[r * numClasses + c] as number;
      if (v > bestV) {
        bestV = v;
        best = c;
      }
    }
    out[r] = best;
  }
  return out;
}

/** Loss, accuracy, confusion matrix and per-class precision/recall/F1 from probabilities and labels. */
export function computeMetrics(probs: Float32Array, labels: ArrayLike<number>, classNames: string[]): EvaluationMetrics {
  const c = classNames.length;
  const n = labels.length;
  if (probs.length !== n * c) {
    throw new DptrainError('E_CONFIG', `metrics: ${probs.length} probabilities for ${n} samples x ${c} classes`);
  }
  const confusion = Array.from({ length: c }, () => new Array<number>(c).fill(0));
  const preds = argmaxRows(probs, c);
  let lossSum = 0;
  let correct = 0;
  const eps = 1e-7;
  for (let i = 0; i < n; i++) {
    const y = labels[i] as number;
    if (!Number.isInteger(y) || y < 0 || y >= c) throw new DptrainError('E_CONFIG', `metrics: label ${y} of sample ${i} is not in 0..${c - 1}`);
    const p = Math.min(Math.max(probs[i * c + y] as number, eps), 1 - eps);
    lossSum -= Math.log(p);
    const pred = preds[i] as number;
    if (pred === y) correct++;
    (confusion[y] as number[])[pred] = ((confusion[y] as number[])[pred] as number) + 1;
  }
  const perClass: ClassMetrics[] = classNames.map((name, k) => {
    const tp = (confusion[k] as number[])[k] as number;
    let predicted = 0;
    let actual = 0;
    for (let j = 0; j < c; j++) {
      predicted += (confusion[j] as number[])[k] as number;
      actual += (confusion[k] as number[])[j] as number;
    }
    const precision = predicted > 0 ? tp / predicted : 0;
    const recall = actual > 0 ? tp / actual : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    return { name, precision, recall, f1, support: actual };
  });
  const mean = (f: (m: ClassMetrics) => number): number => (c > 0 ? perClass.reduce((s, m) => s + f(m), 0) / c : 0);
  return {
    loss: n > 0 ? lossSum / n : 0,
    accuracy: n > 0 ? correct / n : 0,
    count: n,
    confusion,
    perClass,
    macro: { precision: mean((m) => m.precision), recall: mean((m) => m.recall), f1: mean((m) => m.f1) },
  };
}
