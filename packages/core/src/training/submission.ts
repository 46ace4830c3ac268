import type { Sample } from '../data/types.js';
import { writeFileAtomic } from './atomic-write.js';

function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * Writes `image_name,label` for each sample in order. Competition layout: the label is the class index
 * (as in train.csv); folder layout: the class name.
 */
export async function writeSubmission(
  file: string,
  samples: Sample[],
  predictions: number[],
  classNames: string[],
  layout: 'competition' | 'folders',
): Promise<void> {
  const lines = ['image_name,label'];
  samples.forEach((s, i) => {
    const p = predictions[i] as number;
    lines.push(`${csvField(s.name)},${layout === 'competition' ? String(p) : csvField(classNames[p] ?? String(p))}`);
  });
  await writeFileAtomic(file, lines.join('\n') + '\n');
}
