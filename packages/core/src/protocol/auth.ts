import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Challenge-response with a shared secret: the coordinator sends a random nonce, the client answers
 * HMAC-SHA256(secret, "dptrain-auth-v1|role|nonce-hex"). The secret itself never crosses the wire.
 */
export const NONCE_BYTES = 32;

export function createNonce(): Uint8Array {
  return new Uint8Array(randomBytes(NONCE_BYTES));
}

export function authResponse(secret: string, nonce: Uint8Array, role: string): Uint8Array {
  const h = createHmac('sha256', secret);
  h.update(`dptrain-auth-v1|${role}|${Buffer.from(nonce).toString('hex')}`);
  return new Uint8Array(h.digest());
}

/** Constant-time check of a client's answer. */
export function verifyAuthResponse(secret: string, nonce: Uint8Array, role: string, mac: Uint8Array): boolean {
  const expected = authResponse(secret, nonce, role);
  if (mac.length !== expected.length) return false;
  return timingSafeEqual(expected, mac);
}
