import { readFileSync } from 'node:fs';
import { DptrainError } from '../errors.js';

export interface SubmissionScore {
  /** Fraction of labelled images predicted correctly. */
  accuracy: number;
  correct: number;
  /** Images present in both files. */
  scored: number;
  /** Images of the labels file that the submission lacks. */
  missing: string[];
}

function readPairs(file: string): Map<string, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new DptrainError('E_DATA_CSV', `cannot read ${file}: ${(e as Error).message}`);
  }
  const out = new Map<string, string>();
  text.split(/\r?\n/).forEach((line, i) => {
    if (i === 0 || line.trim() === '') return;
    const comma = line.lastIndexOf(',');
    if (comma < 0) throw new DptrainError('E_DATA_CSV', `${file}:${i + 1}: expected image_name,label`);
    out.set(line.slice(0, comma).replace(/^"|"$/g, ''), line.slice(comma + 1).trim());
  });
  return out;
}

/** Scores a submission.csv (image_name,label) against a labels file of the same format (e.g. test_labels.csv). */
export function scoreSubmission(submissionCsv: string, labelsCsv: string): SubmissionScore {
  const sub = readPairs(submissionCsv);
  const truth = readPairs(labelsCsv);
  let correct = 0;
  let scored = 0;
  const missing: string[] = [];
  for (const [name, label] of truth) {
    const p = sub.get(name);
    if (p === undefined) {
      missing.push(name);
      continue;
    }
    scored++;
    if (p === label) correct++;
  }
  return { accuracy: truth.size > 0 ? correct / truth.size : 0, correct, scored, missing };
}
