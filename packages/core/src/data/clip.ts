/** Longest name shown in a message by default (characters). */
export const DEFAULT_MAX_SHOWN_CHARS = 160;

/**
 * Shortens text for a message: keeps its start and end and says how much was cut, e.g.
 * `aaaa…(99,840 more characters)…aaaa.jpg`. Text up to `max` characters is returned unchanged.
 */
export function clipForMessage(text: string, max: number = DEFAULT_MAX_SHOWN_CHARS): string {
  if (text.length <= max) return text;
  const keep = Math.max(8, max - 40);
  const head = Math.ceil(keep * 0.6);
  const tail = keep - head;
  return `${text.slice(0, head)}…(${(text.length - keep).toLocaleString('en-US')} more characters)…${text.slice(text.length - tail)}`;
}
