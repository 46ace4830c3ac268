import { describe, expect, it } from 'vitest';
import { pack } from 'msgpackr';
import {
  PROTOCOL_VERSION,
  authResponse,
  coordinatorProof,
  verifyCoordinatorProof,
  createNonce,
  decodeMessage,
  encodeMessage,
  encodeMessageParts,
  sendMessage,
  bfloat16ToFloat32,
  float16ToFloat32,
  float32ToBfloat16,
  float32ToFloat16,
  isDptrainError,
  packGradients,
  unpackGradients,
  verifyAuthResponse,
  type DptrainErrorCode,
} from '@dptrain/core';

function codeOf(fn: () => unknown): DptrainErrorCode | undefined {
  try {
    fn();
  } catch (e) {
    if (isDptrainError(e)) return e.code;
    throw e;
  }
  return undefined;
}

describe('protocol codec', () => {
  it('round-trips typed arrays as raw little-endian bytes', () => {
    const g = new Float32Array([1.5, -2.25, 3e-8, 1e20]);
    const frame = encodeMessage({ type: 'weights', version: 7, weights: g, ack: false });
    // the 16 bytes of the array appear verbatim in the frame
    expect(frame.includes(Buffer.from(g.buffer))).toBe(true);
    expect(frame.length).toBeLessThan(16 + 64);
    const msg = decodeMessage(frame);
    expect(msg.type).toBe('weights');
    if (msg.type !== 'weights') return;
    expect(Array.from(msg.weights)).toEqual(Array.from(g));
    const idx = decodeMessage(encodeMessage({ type: 'step', id: 1, phase: 'head', epoch: 0, step: 3, indices: new Uint32Array([5, 6, 7]), microBatch: 8 }));
    expect(idx.type === 'step' && Array.from(idx.indices)).toEqual([5, 6, 7]);
  });

  it('rejects bad frames with stable codes', () => {
    expect(codeOf(() => decodeMessage(Buffer.from([0xc1, 0x00])))).toBe('E_PROTOCOL_DECODE');
    expect(codeOf(() => decodeMessage(pack([1, 2, 3])))).toBe('E_PROTOCOL_DECODE');
    expect(codeOf(() => decodeMessage(pack({ v: 99, type: 'heartbeat', time: 1 })))).toBe('E_PROTOCOL_VERSION');
    expect(codeOf(() => decodeMessage(pack({ v: PROTOCOL_VERSION, type: 'heartbeat', time: 'x' })))).toBe('E_PROTOCOL_SCHEMA');
    expect(codeOf(() => decodeMessage(pack({ v: PROTOCOL_VERSION, type: 'nope' })))).toBe('E_PROTOCOL_SCHEMA');
    expect(codeOf(() => decodeMessage(encodeMessage({ type: 'heartbeat', time: 1 }), 4))).toBe('E_PROTOCOL_OVERSIZE');
  });

  it('checks gradient shape and finiteness', () => {
    const base = { type: 'gradients' as const, id: 1, loss: 1, count: 2, correct: 1, computeMs: 3 };
    const ok = decodeMessage(encodeMessage({ ...base, ...packGradients(new Float32Array([1, 2, 3]), 'fp32') }));
    if (ok.type !== 'gradients') throw new Error('type');
    expect(Array.from(unpackGradients(ok, 3, 'w1'))).toEqual([1, 2, 3]);
    expect(codeOf(() => unpackGradients(ok, 4, 'w1'))).toBe('E_GRADIENT_SHAPE');
    const nan = decodeMessage(encodeMessage({ ...base, ...packGradients(new Float32Array([1, NaN, 3]), 'fp32') }));
    if (nan.type !== 'gradients') throw new Error('type');
    expect(codeOf(() => unpackGradients(nan, 3, 'w1'))).toBe('E_GRADIENT_NONFINITE');
    const inf16 = decodeMessage(encodeMessage({ ...base, ...packGradients(new Float32Array([1, 1e6, 3]), 'fp16') }));
    if (inf16.type !== 'gradients') throw new Error('type');
    expect(codeOf(() => unpackGradients(inf16, 3, 'w1'))).toBe('E_GRADIENT_NONFINITE');
  });

  it('converts fp16 within half-precision rounding', () => {
    const src = new Float32Array([0, -0, 1, -1, 0.1, 65504, 6.1e-5, 3e-7, -123.456, 1e-3]);
    const back = float16ToFloat32(float32ToFloat16(src));
    for (let i = 0; i < src.length; i++) {
      const tol = Math.max(Math.abs(src[i]!) * 2 ** -11, 2 ** -24);
      expect(Math.abs(back[i]! - src[i]!)).toBeLessThanOrEqual(tol);
    }
    expect(float16ToFloat32(float32ToFloat16(new Float32Array([1e6])))[0]).toBe(Infinity);
  });

  it('converts bf16 to nearest even, keeps fp32 range, Infinity and NaN; bf16 gradients travel and are checked', () => {
    const bits = (x: number) => new Uint32Array(new Float32Array([x]).buffer)[0]!;
    const fromBits = (u: number) => new Float32Array(new Uint32Array([u]).buffer)[0]!;
    // exactly halfway between two bf16 values: to the even one (both directions)
    const down = fromBits(0x3f808000); // 1 + 2^-8: halfway between 1 (even) and 1 + 2^-7
    const up = fromBits(0x3f818000); // halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even)
    const above = fromBits(0x3f808001);
    const src = new Float32Array([0, -0, 1, down, up, above, 1e30, -3e38, 1e-30, Infinity, -Infinity, NaN, 0.1]);
    const enc = float32ToBfloat16(src);
    const back = bfloat16ToFloat32(enc);
    expect(bits(back[3]!)).toBe(0x3f800000);
    expect(bits(back[4]!)).toBe(0x3f820000);
    expect(bits(back[5]!)).toBe(0x3f810000);
    expect(back[6]! / 1e30).toBeCloseTo(1, 2); // no overflow where fp16 would give Infinity
    expect(back[7]! / -3e38).toBeCloseTo(1, 2);
    expect(back[9]).toBe(Infinity);
    expect(back[10]).toBe(-Infinity);
    expect(Number.isNaN(back[11]!)).toBe(true);
    for (const i of [0, 1, 2, 8, 12]) expect(Math.abs(back[i]! - src[i]!)).toBeLessThanOrEqual(Math.abs(src[i]!) * 2 ** -8);
    const base = { type: 'gradients' as const, id: 1, loss: 1, count: 2, correct: 1, computeMs: 3 };
    const ok = decodeMessage(encodeMessage({ ...base, ...packGradients(new Float32Array([1, 1e30, 3]), 'bf16') }));
    if (ok.type !== 'gradients') throw new Error('type');
    expect(ok.dtype).toBe('bf16');
    expect(unpackGradients(ok, 3, 'w1')[1]! / 1e30).toBeCloseTo(1, 2);
    const nan = decodeMessage(encodeMessage({ ...base, ...packGradients(new Float32Array([1, NaN, 3]), 'bf16') }));
    if (nan.type !== 'gradients') throw new Error('type');
    expect(codeOf(() => unpackGradients(nan, 3, 'w1'))).toBe('E_GRADIENT_NONFINITE');
  });

  it('HMAC challenge-response never needs the secret on the wire, and binds both nonces', () => {
    const nonce = createNonce();
    const mine = createNonce();
    const mac = authResponse('s3cret', nonce, 'worker', mine);
    expect(verifyAuthResponse('s3cret', nonce, 'worker', mine, mac)).toBe(true);
    expect(verifyAuthResponse('wrong', nonce, 'worker', mine, mac)).toBe(false);
    expect(verifyAuthResponse('s3cret', nonce, 'observer', mine, mac)).toBe(false);
    expect(verifyAuthResponse('s3cret', createNonce(), 'worker', mine, mac)).toBe(false);
    expect(verifyAuthResponse('s3cret', nonce, 'worker', createNonce(), mac)).toBe(false);
    expect(verifyAuthResponse('s3cret', nonce, 'worker', mine, mac.slice(0, 10))).toBe(false);
    const frame = encodeMessage({ type: 'auth', mac });
    expect(frame.includes(Buffer.from('s3cret'))).toBe(false);
  });

  it("the coordinator's proof is its own: a client's answer never passes for it, and a missing one fails", () => {
    const nonce = createNonce();
    const mine = createNonce();
    const proof = coordinatorProof('s3cret', nonce, 'worker', mine);
    expect(verifyCoordinatorProof('s3cret', nonce, 'worker', mine, proof)).toBe(true);
    expect(verifyCoordinatorProof('s3cret', nonce, 'worker', mine, authResponse('s3cret', nonce, 'worker', mine))).toBe(false);
    expect(verifyAuthResponse('s3cret', nonce, 'worker', mine, proof)).toBe(false);
    expect(verifyCoordinatorProof('other', nonce, 'worker', mine, proof)).toBe(false);
    expect(verifyCoordinatorProof('s3cret', nonce, 'worker', createNonce(), proof)).toBe(false);
    expect(verifyCoordinatorProof('s3cret', nonce, 'worker', mine, undefined)).toBe(false);
  });
});

describe('large arrays', () => {
  it('travel as aligned raw blobs and decode as zero-copy views', () => {
    const g = new Float32Array(100_000).map((_, i) => i * 0.5 - 7);
    const frame = encodeMessage({ type: 'gradients', id: 3, dtype: 'fp32', gradients: g, loss: 0.5, count: 4, correct: 2, computeMs: 1 });
    expect(frame.length).toBeLessThan(g.byteLength + 256);
    const copy = Buffer.from(frame); // a fresh buffer, as ws delivers it
    const msg = decodeMessage(copy);
    if (msg.type !== 'gradients' || !(msg.gradients instanceof Float32Array)) throw new Error('type');
    expect(msg.gradients.buffer).toBe(copy.buffer);
    expect(msg.gradients).toEqual(g);
    // misaligned buffers are copied, still correct
    const shifted = Buffer.alloc(copy.length + 1).subarray(1);
    copy.copy(shifted);
    const m2 = decodeMessage(shifted);
    expect(m2.type === 'gradients' && Array.from(m2.gradients.subarray(0, 5))).toEqual(Array.from(g.subarray(0, 5)));
    // a layout that points past the end is a decode error
    const bad = Buffer.from(frame.subarray(0, frame.length - 8));
    expect(codeOf(() => decodeMessage(bad))).toBe('E_PROTOCOL_DECODE');
  });

  it('are sent as fragments straight from the array and decoded from fragments without reassembly', () => {
    const g = new Float32Array(100_001).map((_, i) => i * 0.25 - 3); // 400,004 bytes: padded to 8
    const idx = new Uint32Array(20_000).map((_, i) => i * 3);
    const message = { type: 'gradients' as const, id: 9, dtype: 'fp32' as const, gradients: g, loss: 0.25, count: 2, correct: 1, computeMs: 3 };
    const parts = encodeMessageParts(message);
    // the concatenation is the one-buffer encoding; the blob part is a view of the array itself
    expect(Buffer.concat(parts).equals(encodeMessage(message))).toBe(true);
    expect(parts.some((p) => p.buffer === g.buffer && p.byteOffset === g.byteOffset)).toBe(true);
    const sent: { data: Buffer; fin: boolean }[] = [];
    sendMessage({ send: (data, o) => sent.push({ data, fin: o.fin }) }, message);
    expect(sent.map((x) => x.fin)).toEqual(parts.map((_, i) => i === parts.length - 1));
    // as ws delivers fragments: each frame's payload copied into its own buffer
    const frags = sent.map((x) => Buffer.from(x.data));
    const msg = decodeMessage(frags);
    if (msg.type !== 'gradients' || !(msg.gradients instanceof Float32Array)) throw new Error('type');
    expect(msg.gradients.buffer).toBe(frags[1]!.buffer); // a view of the fragment, not a reassembled copy
    expect(msg.gradients).toEqual(g);
    // any other fragmentation (arbitrary cuts, also inside the header) decodes to the same message
    const whole = Buffer.concat(frags);
    for (const cuts of [[3], [100, 4000, 4001, 200_000], [whole.length - 5]]) {
      const pieces: Buffer[] = [];
      let at = 0;
      for (const c of [...cuts, whole.length]) {
        pieces.push(Buffer.from(whole.subarray(at, c)));
        at = c;
      }
      const m = decodeMessage(pieces);
      expect(m.type === 'gradients' && m.gradients).toEqual(g);
    }
    // a two-blob message (step indices + fp16 gradients) as fragments
    const two = encodeMessageParts({ type: 'step', id: 1, phase: 'head', epoch: 0, step: 0, indices: idx, microBatch: 8 });
    const m3 = decodeMessage(two.map((p) => Buffer.from(p)));
    expect(m3.type === 'step' && Array.from(m3.indices)).toEqual(Array.from(idx));
    // truncated fragments are a decode error, not a crash
    expect(codeOf(() => decodeMessage([frags[0]!, frags[1]!.subarray(0, 100)]))).toBe('E_PROTOCOL_DECODE');
  });
});
