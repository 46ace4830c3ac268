// Child process of bench/exchange.bench.ts: a worker on loopback, either a real dptrain worker (startWorker)
// with a stand-in replica that returns a fixed gradient of `floats` values (exchange-lab/synthetic-replica.ts),
// or a raw TCP peer that moves the same bytes (the baseline). argv: mode url token floats
import { connect } from 'node:net';
import { startWorker } from '@dptrain/worker';
import { useNativeOptimizer } from '@dptrain/core';
import { syntheticDataset, syntheticReplica } from './exchange-lab/synthetic-replica.js';

const [mode, url, token, floatsArg] = process.argv.slice(2);
const floats = Number(floatsArg);

if (mode === 'cluster') {
  // A real worker loads its compute backend (the native addon when present, with its allocator options).
  await useNativeOptimizer();
  const replica = syntheticReplica({ floats });
  const dataset = syntheticDataset({ labelled: 64 });
  const h = startWorker({
    url: url!,
    token: token!,
    createReplica: async () => replica,
    loadDataset: () => dataset,
    log: () => undefined,
    giveUpAfterMs: 10_000,
  });
  await h.done;
  process.exit(0);
} else {
  // raw: receive `bytes`, send them back when asked (one byte 'go'), then a 1-byte ack per round trip
  const bytes = floats * 4;
  const [host, port] = url!.split(':');
  const sock = connect(Number(port), host!);
  sock.setNoDelay(true);
  const payload = Buffer.alloc(bytes, 7);
  let got = 0;
  sock.on('data', (d) => {
    // protocol: server sends 'S' => we send `bytes`; server sends `bytes` => we reply 'A'
    if (got === 0 && d.length === 1 && d[0] === 0x53) {
      sock.write(payload);
      return;
    }
    got += d.length;
    if (got >= bytes) {
      got = 0;
      sock.write(Buffer.from('A'));
    }
  });
  sock.on('close', () => process.exit(0));
}
