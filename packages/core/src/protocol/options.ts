/** Limits and timings of the wire protocol. Every field is optional; `resolveProtocolOptions` fills the defaults. */
export interface ProtocolOptions {
  /** Largest frame accepted from an authenticated peer, in bytes. Default 512 MiB (VGG16 block5 + head is ~37 MB fp32). */
  maxPayload?: number;
  /** Largest frame accepted before authentication, in bytes. Default 64 KiB. */
  preAuthMaxPayload?: number;
  /** How often each side sends a heartbeat, in ms. Default 1000. */
  heartbeatIntervalMs?: number;
  /** A peer silent for this long is declared lost, in ms. Default 5000. */
  lostAfterMs?: number;
  /** Time allowed from connect to a completed join (auth + hashes), in ms. Default 120000 (a worker may load a large base). */
  joinTimeoutMs?: number;
  /** Time allowed to complete the challenge-response after connecting, in ms. Default 10000. */
  authTimeoutMs?: number;
}

export type ResolvedProtocolOptions = Required<ProtocolOptions>;

export const DEFAULT_PROTOCOL_OPTIONS: ResolvedProtocolOptions = {
  maxPayload: 512 * 1024 * 1024,
  preAuthMaxPayload: 64 * 1024,
  heartbeatIntervalMs: 1000,
  lostAfterMs: 5000,
  joinTimeoutMs: 120_000,
  authTimeoutMs: 10_000,
};

export function resolveProtocolOptions(options: ProtocolOptions = {}): ResolvedProtocolOptions {
  const out = { ...DEFAULT_PROTOCOL_OPTIONS };
  for (const [k, v] of Object.entries(options)) if (v !== undefined) (out as Record<string, number>)[k] = v as number;
  return out;
}
