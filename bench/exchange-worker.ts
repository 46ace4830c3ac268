// Child process of bench/exchange.bench.ts: a raw TCP peer that moves the bytes of one worker's exchange (the
// baseline; the cluster side runs bench/exchange-lab/synthetic-worker.ts, the real worker over a model-free replica).
// argv: host:port floats. Protocol: the server sends 'S', the peer sends `floats * 4` bytes; the server sends that
// many bytes, the peer answers with a 1-byte ack.
import { connect } from 'node:net';

const [address, floatsArg] = process.argv.slice(2);
const bytes = Number(floatsArg) * 4;
const [host, port] = address!.split(':');
const sock = connect(Number(port), host!);
sock.setNoDelay(true);
const payload = Buffer.alloc(bytes, 7);
let got = 0;
sock.on('data', (d) => {
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
