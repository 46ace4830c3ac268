import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

/** A raw TCP connection to the coordinator, for probes that a WebSocket library would not send. */
export function rawConnect(port: number, localAddress = '127.0.0.1', host = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host, localAddress }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Resolves when the socket is closed by the other end (or errors), with the time it took. */
export function closedWithin(s: Socket): Promise<number> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    if (s.destroyed) return resolve(0);
    s.on('error', () => undefined);
    s.once('close', () => resolve(Date.now() - t0));
    s.resume();
  });
}

/** Sends a WebSocket upgrade request by hand; resolves with the HTTP status of the answer. */
export async function rawUpgrade(s: Socket, headers: Record<string, string> = {}): Promise<number> {
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  s.write(
    `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
  );
  let got = '';
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer): void => {
      got += d.toString('latin1');
      const end = got.indexOf('\r\n\r\n');
      if (end < 0) return;
      s.off('data', onData);
      resolve(Number(/^HTTP\/1\.1 (\d+)/.exec(got)?.[1] ?? 0));
    };
    s.on('data', onData);
    s.once('close', () => reject(new Error(`closed during the upgrade: ${got.slice(0, 200)}`)));
  });
}

/** The header of one masked (all-zero key) binary client frame whose payload is `length` bytes. */
export function frameHeader(length: number): Buffer {
  if (length < 126) return Buffer.from([0x82, 0x80 | length, 0, 0, 0, 0]);
  if (length < 65536) {
    const b = Buffer.from([0x82, 0x80 | 126, 0, 0, 0, 0, 0, 0]);
    b.writeUInt16BE(length, 2);
    return b;
  }
  const b = Buffer.alloc(14);
  b[0] = 0x82;
  b[1] = 0x80 | 127;
  b.writeBigUInt64BE(BigInt(length), 2);
  return b;
}

/**
 * Streams one frame of `length` zero bytes (never holding more than a chunk), until it is all written or the
 * coordinator closes the connection; resolves with the payload bytes written.
 */
export async function streamFrame(s: Socket, length: number, chunk = 1 << 20): Promise<number> {
  const zeros = Buffer.alloc(chunk);
  let sent = 0;
  let gone = false;
  s.on('error', () => (gone = true));
  s.once('close', () => (gone = true));
  s.write(frameHeader(length));
  while (sent < length && !gone) {
    const n = Math.min(chunk, length - sent);
    const ok = s.write(n === chunk ? zeros : zeros.subarray(0, n));
    sent += n;
    if (!ok)
      await new Promise<void>((r) => {
        const done = (): void => {
          s.off('drain', done);
          s.off('close', done);
          r();
        };
        s.once('drain', done);
        s.once('close', done);
      });
  }
  return sent;
}
