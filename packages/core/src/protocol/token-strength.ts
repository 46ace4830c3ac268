/** What a shared secret must reach not to be called weak. */
export interface TokenStrengthOptions {
  /** Fewest characters. Default 16. */
  minLength?: number;
  /** Fewest estimated bits of entropy (length × Shannon entropy of its characters). Default 64. */
  minBits?: number;
}

const TOKEN_STRENGTH_DEFAULTS: Required<TokenStrengthOptions> = { minLength: 16, minBits: 64 };

/** Estimated entropy of a token in bits: its length times the Shannon entropy of its character distribution. */
export function tokenEntropyBits(token: string): number {
  const chars = [...token];
  if (chars.length === 0) return 0;
  const counts = new Map<string, number>();
  for (const c of chars) counts.set(c, (counts.get(c) ?? 0) + 1);
  let perChar = 0;
  for (const n of counts.values()) {
    const p = n / chars.length;
    perChar -= p * Math.log2(p);
  }
  return perChar * chars.length;
}

/**
 * Why a shared secret is weak (too short, or too little entropy, e.g. `aaaaaaaaaaaaaaaaaaaa` or a word
 * repeated), or undefined when it is not. The message never contains the token.
 */
export function tokenWeakness(token: string, options: TokenStrengthOptions = {}): string | undefined {
  const o = { ...TOKEN_STRENGTH_DEFAULTS, ...options };
  const length = [...token].length;
  const advice = 'use a random one, e.g. `openssl rand -hex 32`';
  if (length < o.minLength) return `the shared secret is weak: ${length} characters, fewer than ${o.minLength}; ${advice}`;
  const bits = tokenEntropyBits(token);
  if (bits < o.minBits) return `the shared secret is weak: about ${Math.floor(bits)} bits of entropy, fewer than ${o.minBits}; ${advice}`;
  return undefined;
}
