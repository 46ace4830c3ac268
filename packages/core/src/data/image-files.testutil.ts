import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';

/** Test helper: writes a w x h JPEG of one colour with a small gradient (so it is a real photo-like JPEG). */
export async function writeJpeg(path: string, w = 16, h = 12, rgb: [number, number, number] = [120, 80, 40]): Promise<void> {
  const raw = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      raw[o] = Math.min(255, rgb[0] + x * 4);
      raw[o + 1] = Math.min(255, rgb[1] + y * 4);
      raw[o + 2] = rgb[2];
    }
  }
  await sharp(raw, { raw: { width: w, height: h, channels: 3 } })
    .jpeg({ quality: 90 })
    .toFile(path);
}

/** Test helper: a temporary competition-layout directory with the given CSV texts and JPEGs. */
export async function makeCompetitionDir(train: string, test: string | undefined, images: readonly string[]): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'dp-data-'));
  mkdirSync(join(dir, 'SceneImages'));
  writeFileSync(join(dir, 'train.csv'), train);
  if (test !== undefined) writeFileSync(join(dir, 'test.csv'), test);
  for (const [i, name] of images.entries()) await writeJpeg(join(dir, 'SceneImages', name), 16, 12, [i * 10, 50, 90]);
  return dir;
}
