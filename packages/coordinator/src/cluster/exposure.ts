import { isIP } from 'node:net';

/** True when `host` only reaches this machine (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (h.startsWith('::ffff:')) return h.slice(7).startsWith('127.');
  return false;
}

/** The warning for a server that listens beyond loopback without TLS, or undefined when there is none to give. */
export function plainTextExposureWarning(host: string, tls: boolean): string | undefined {
  if (tls || isLoopbackHost(host)) return undefined;
  const where = host === '0.0.0.0' || host === '::' || host === '' ? 'every interface' : host;
  return `listening on ${where} over plain ws (no TLS): frames, weights and the run config travel unencrypted (authentication is still challenge-response); use --tls-cert/--tls-key, or listen on 127.0.0.1 behind a tunnel`;
}
