import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pack } from 'msgpackr';
import type { Socket } from 'node:net';
import { EventBus, PROTOCOL_VERSION, createNonce, decodeMessage, parseRunConfig, type RunEvent } from '@dptrain/core';
import { ClusterServer } from '../../packages/coordinator/src/cluster/index.js';
import { closedWithin, frameHeader, rawConnect, rawUpgrade } from './raw-socket.testutil.js';

/**
 * A peer of the previous protocol version (1: `weights.step`, fp16 override flag), as an old dptrain release
 * would open its connection: a raw socket on loopback that sends a version-1 `hello` by hand. The coordinator
 * must refuse it by name, saying both versions, and close the connection.
 */
let server: ClusterServer;
let port: number;
const events: RunEvent[] = [];

beforeAll(async () => {
  const bus = new EventBus();
  bus.on((e) => events.push(e));
  server = new ClusterServer({ token: 'protocol-version-token-0d9e', config: parseRunConfig({ dataDir: '/nowhere', classNames: ['a', 'b'] }), bus });
  port = Number(new URL(await server.listen()).port);
});

afterAll(async () => {
  await server.close();
});

/** Reads one unmasked server frame (binary, payload under 64 KiB) from `s`. */
function readFrame(s: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      got = Buffer.concat([got, d]);
      if (got.length < 2) return;
      const short = got[1]! & 0x7f;
      const head = short === 126 ? 4 : 2;
      const len = short === 126 ? got.readUInt16BE(2) : short;
      if (got.length < head + len) return;
      s.off('data', onData);
      resolve(got.subarray(head, head + len));
    };
    s.on('data', onData);
    s.once('close', () => reject(new Error('closed before a frame arrived')));
  });
}

describe('protocol version', () => {
  it(`a version-1 peer is refused with E_PROTOCOL_VERSION naming versions 1 and ${PROTOCOL_VERSION}, and disconnected`, async () => {
    expect(PROTOCOL_VERSION).toBe(4);
    const s = await rawConnect(port);
    expect(await rawUpgrade(s)).toBe(101);
    const frame = readFrame(s);
    const closed = closedWithin(s);
    const hello = pack({ v: 1, type: 'hello', role: 'worker', name: 'old-release', nonce: createNonce() });
    s.write(Buffer.concat([frameHeader(hello.length), hello])); // all-zero mask: the payload goes as it is
    const reply = decodeMessage(await frame);
    expect(reply.type).toBe('error');
    if (reply.type !== 'error') return;
    expect(reply.code).toBe('E_PROTOCOL_VERSION');
    expect(reply.message).toMatch(/version 1\b.*version 4\b/);
    expect(await closed).toBeLessThan(5000);
    expect(server.rejected.get('E_PROTOCOL_VERSION')).toBe(1);
    expect(server.workers).toHaveLength(0);
  });

  it('a current-version hello from the same kind of socket gets its challenge (the probe itself is sound)', async () => {
    const s = await rawConnect(port);
    expect(await rawUpgrade(s)).toBe(101);
    const frame = readFrame(s);
    const hello = pack({ v: PROTOCOL_VERSION, type: 'hello', role: 'worker', name: 'new-release', nonce: createNonce() });
    s.write(Buffer.concat([frameHeader(hello.length), hello]));
    expect(decodeMessage(await frame).type).toBe('challenge');
    s.destroy();
  });
});
