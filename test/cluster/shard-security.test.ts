import { afterEach, describe, expect, it } from 'vitest';
import { resolveProtocolOptions, type Message } from '@dptrain/core';
import { connectAndAuth } from '@dptrain/client';
import { ShardLinks } from '@dptrain/worker';
import { SenderServer } from '../../packages/coordinator/src/shard/sender-server.js';

/**
 * The shard's rules on real sockets (loopback): a sender links only to the shards the coordinator named, trusts one
 * only once it proved it knows the run's token, and takes from it only weights of the range it was named for; a
 * shard serves only senders that know the token.
 */
const TOKEN = 'shard-security-token-0123456789';
const servers: SenderServer[] = [];
const links: ShardLinks[] = [];

afterEach(async () => {
  for (const l of links.splice(0)) l.close();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function shardServer(token: string, got: { sender: string; msg: Message }[] = []): Promise<{ server: SenderServer; url: string }> {
  const server = new SenderServer({
    token,
    host: '127.0.0.1',
    port: 0,
    protocol: resolveProtocolOptions({ authTimeoutMs: 5000 }),
    onMessage: (sender, msg) => got.push({ sender, msg }),
    onRefused: () => undefined,
  });
  servers.push(server);
  return { server, url: await server.listen() };
}

function senderLinks(token: string): ShardLinks {
  const l = new ShardLinks({ token, workerId: 'w1', log: () => undefined, waitMs: 1500, connectTimeoutMs: 5000 });
  links.push(l);
  return l;
}

describe('shard links and the shard server', () => {
  it('a sender and a shard with different tokens never link: the gradient never goes there', async () => {
    const got: { sender: string; msg: Message }[] = [];
    const { url } = await shardServer('another-token-that-is-not-the-run-s', got);
    const l = senderLinks(TOKEN);
    l.configure({ v: 1, type: 'shard_map', generation: 1, size: 4, shards: [{ id: 's1', url, start: 0, end: 4 }] });
    await expect(l.sendRanges(1, new Float32Array(4), false)).rejects.toThrow(/E_SHARD_LOST|cannot be reached/);
    expect(got).toEqual([]);
  });

  it('a shard refuses a sender without the token', async () => {
    const { url } = await shardServer(TOKEN);
    await expect(connectAndAuth({ url, token: 'wrong-token-wrong-token-wrong', role: 'sender', name: 'w9', timeoutMs: 5000 })).rejects.toThrow(
      /E_AUTH|refused/,
    );
  });

  it('ranges go to the named shards; weights count only from a named shard, for its own range', async () => {
    const got0: { sender: string; msg: Message }[] = [];
    const got1: { sender: string; msg: Message }[] = [];
    const a = await shardServer(TOKEN, got0);
    const b = await shardServer(TOKEN, got1);
    const l = senderLinks(TOKEN);
    l.configure({
      v: 1,
      type: 'shard_map',
      generation: 1,
      size: 6,
      shards: [
        { id: 's1', url: a.url, start: 0, end: 4 },
        { id: 's2', url: b.url, start: 4, end: 6 },
      ],
    });
    await l.sendRanges(7, Float32Array.from([1, 2, 3, 4, 5, 6]), false);
    const until = Date.now() + 5000;
    while ((got0.length === 0 || got1.length === 0) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    const r0 = got0[0]!.msg as Extract<Message, { type: 'grad_range' }>;
    const r1 = got1[0]!.msg as Extract<Message, { type: 'grad_range' }>;
    expect([got0[0]!.sender, r0.request, r0.offset, Array.from(r0.gradients)]).toEqual(['w1', 7, 0, [1, 2, 3, 4]]);
    expect([got1[0]!.sender, r1.offset, Array.from(r1.gradients)]).toEqual(['w1', 4, [5, 6]]);
    // shard s2 sends a range it was not named for: ignored, the weights of version 3 never complete
    a.server.broadcast({ type: 'weights_range', version: 3, offset: 0, weights: Float32Array.from([9, 9, 9, 9]) });
    b.server.broadcast({ type: 'weights_range', version: 3, offset: 0, weights: Float32Array.from([8, 8, 8, 8]) });
    await expect(l.weightsOf(3)).rejects.toThrow(/no weights of version 3/);
    expect(l.latestVersion).toBe(-1);
    // its own range: complete
    b.server.broadcast({ type: 'weights_range', version: 3, offset: 4, weights: Float32Array.from([7, 7]) });
    const w = await l.weightsOf(3);
    expect([w.version, Array.from(w.weights)]).toEqual([3, [9, 9, 9, 9, 7, 7]]);
  });
});
