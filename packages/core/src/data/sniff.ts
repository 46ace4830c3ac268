/** Image container formats sharp can decode here, recognised by their first bytes. */
export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff' | 'heif';

/** Identifies an image format from a file's first bytes, or undefined when it is not an image sharp reads. */
export function sniffImageFormat(buf: Uint8Array): ImageFormat | undefined {
  const b = (i: number) => buf[i] ?? -1;
  const ascii = (start: number, s: string) => [...s].every((ch, i) => b(start + i) === ch.charCodeAt(0));
  if (b(0) === 0xff && b(1) === 0xd8 && b(2) === 0xff) return 'jpeg';
  if (b(0) === 0x89 && ascii(1, 'PNG')) return 'png';
  if (ascii(0, 'RIFF') && ascii(8, 'WEBP')) return 'webp';
  if (ascii(0, 'GIF8')) return 'gif';
  if ((ascii(0, 'II') && b(2) === 42 && b(3) === 0) || (ascii(0, 'MM') && b(2) === 0 && b(3) === 42)) return 'tiff';
  if (ascii(4, 'ftyp')) return 'heif';
  return undefined;
}
