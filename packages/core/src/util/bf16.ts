/**
 * bfloat16: the top 16 bits of an IEEE fp32 (8-bit exponent, 7-bit mantissa), rounded to nearest even. What the
 * native backend's bf16 kernels multiply; the feature cache can store bf16 (`FeatureCacheOptions.bf16`).
 */
/** Encodes a Float32Array as bf16 bit patterns (round to nearest even; NaN stays a quiet NaN). */
export function float32ToBfloat16(src: Float32Array): Uint16Array {
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < u.length; i++) {
    const x = u[i]!;
    if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) {
      out[i] = (x >>> 16) | 0x40; // NaN: keep it a (quiet) NaN after truncation
      continue;
    }
    out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16; // a carry into the exponent is still correct (up to Inf)
  }
  return out;
}

/** Decodes bf16 bit patterns to a Float32Array (exact: a shift). */
export function bfloat16ToFloat32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) u[i] = src[i]! << 16;
  return out;
}
