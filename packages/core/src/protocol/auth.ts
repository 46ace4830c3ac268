import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Mutual challenge-response with a shared secret. The client says hello with a random nonce of its own, the
 * coordinator answers with a random nonce; the client proves it knows the secret with
 * HMAC-SHA256(secret, "dptrain-auth-v2|client|role|coordinator-nonce|client-nonce"), and the coordinator, once it
 * accepted that, proves it too with the same HMAC under the label "coordinator". Each side signs the other's fresh
 * nonce, so neither proof can be replayed, and the labels differ, so one side's proof is never the other's.
 * The secret itself never crosses the wire.
 */
export const NONCE_BYTES = 32;

export function createNonce(): Uint8Array {
  return new Uint8Array(randomBytes(NONCE_BYTES));
}

type Party = 'client' | 'coordinator';

function proof(party: Party, secret: string, nonce: Uint8Array, role: string, clientNonce: Uint8Array): Uint8Array {
  const h = createHmac('sha256', secret);
  h.update(`dptrain-auth-v2|${party}|${role}|${Buffer.from(nonce).toString('hex')}|${Buffer.from(clientNonce).toString('hex')}`);
  return new Uint8Array(h.digest());
}

function sameMac(expected: Uint8Array, mac: Uint8Array | undefined): boolean {
  if (!mac || mac.length !== expected.length) return false;
  return timingSafeEqual(expected, mac);
}

/** The client's answer to the coordinator's `nonce` (`clientNonce`: the one the client sent in its hello). */
export function authResponse(secret: string, nonce: Uint8Array, role: string, clientNonce: Uint8Array): Uint8Array {
  return proof('client', secret, nonce, role, clientNonce);
}

/** Constant-time check of a client's answer. */
export function verifyAuthResponse(secret: string, nonce: Uint8Array, role: string, clientNonce: Uint8Array, mac: Uint8Array): boolean {
  return sameMac(proof('client', secret, nonce, role, clientNonce), mac);
}

/** The coordinator's proof that it knows the secret too (sent in `accepted`). */
export function coordinatorProof(secret: string, nonce: Uint8Array, role: string, clientNonce: Uint8Array): Uint8Array {
  return proof('coordinator', secret, nonce, role, clientNonce);
}

/** Constant-time check, on the client, of the coordinator's proof; false when it is missing. */
export function verifyCoordinatorProof(secret: string, nonce: Uint8Array, role: string, clientNonce: Uint8Array, mac: Uint8Array | undefined): boolean {
  return sameMac(proof('coordinator', secret, nonce, role, clientNonce), mac);
}
