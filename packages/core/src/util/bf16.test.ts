import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FeatureCache } from '../training/feature-cache.js';
import { bfloat16ToFloat32, float32ToBfloat16 } from './bf16.js';

const bits = (x: number) => new Uint32Array(Float32Array.of(x).buffer)[0]!;

describe('bf16 conversion', () => {
  it('keeps the top 16 bits, rounding to nearest even', () => {
    // 1 + 2^-8 is halfway between bf16 1 and 1 + 2^-7: ties go to the even one (1); just above goes up
    const src = Float32Array.of(1, 1 + 2 ** -8, 1 + 2 ** -8 + 2 ** -20, 1 + 3 * 2 ** -8, -2.5, 3.0e38, 1e-40, 0, -0);
    const out = bfloat16ToFloat32(float32ToBfloat16(src));
    expect(Array.from(out.slice(0, 5))).toEqual([1, 1, 1 + 2 ** -7, 1 + 2 ** -6, -2.5]);
    expect(Math.abs(out[5]! - 3.0e38) / 3.0e38).toBeLessThan(2 ** -8); // fp32's range: no overflow as in fp16
    expect(out[6]).toBeGreaterThan(0); // subnormals survive
    expect(bits(out[8]!)).toBe(0x80000000); // -0 stays -0
  });

  it('keeps Infinity and NaN, and the largest finite value rounds up to Infinity', () => {
    const out = bfloat16ToFloat32(float32ToBfloat16(Float32Array.of(Infinity, -Infinity, NaN, 3.4028234e38)));
    expect(out[0]).toBe(Infinity);
    expect(out[1]).toBe(-Infinity);
    expect(Number.isNaN(out[2])).toBe(true);
    expect(out[3]).toBe(Infinity);
  });

  it('round-trips every bf16 value exactly', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const back = float32ToBfloat16(bfloat16ToFloat32(all));
    for (let i = 0; i < 65536; i++) {
      const isNaN = (i & 0x7f80) === 0x7f80 && (i & 0x7f) !== 0;
      if (!isNaN && back[i] !== i) throw new Error(`bf16 ${i.toString(16)} came back as ${back[i]!.toString(16)}`);
    }
  });
});

describe('feature cache stored as bf16', () => {
  it('returns bf16-rounded values from memory and from disk, in .bf16 files of 2 bytes a value', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dptrain-bf16-cache-'));
    try {
      const values = Float32Array.from({ length: 100 }, (_, i) => Math.sin(i) * 1000);
      const cache = new FeatureCache({ namespace: 'bf16-test', dir, bf16: true, maxMemoryBytes: 150, writeThrough: true });
      expect(cache.bf16).toBe(true);
      expect(cache.fp16).toBe(false);
      const stored = cache.put('k1', values);
      expect(Array.from(stored)).toEqual(Array.from(bfloat16ToFloat32(float32ToBfloat16(values))));
      expect(Array.from(stored)).not.toEqual(Array.from(values));
      expect(Array.from(cache.roundTrip(values))).toEqual(Array.from(stored));
      cache.put(
        'k2',
        values.map((v) => -v),
      ); // evicts k1 from memory (150 bytes hold one entry)
      const files = fs.readdirSync(cache.folder!).filter((f) => f.endsWith('.bf16'));
      expect(files.length).toBe(2);
      expect(fs.statSync(path.join(cache.folder!, files[0]!)).size).toBe(200);
      expect(Array.from(cache.get('k1')!)).toEqual(Array.from(stored));
      expect(cache.stats.diskHits).toBe(1);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
