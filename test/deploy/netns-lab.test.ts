/**
 * The plumbing under the multi-host test: namespaces joined by a bridge carry real TCP between "hosts", the lab
 * is sealed off from the root namespace, and cutting a host's link drops its packets silently until restored.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { NetnsLab } from './netns-lab.testutil.js';
import { LineReader } from './lines.testutil.js';

const probe = NetnsLab.probe();
if (!probe.ok) console.warn(`[netns-lab] skipped: ${probe.reason}`);

const ECHO_SERVER = `
const net = require('node:net'); const os = require('node:os');
net.createServer((s) => { s.write('hello from ' + os.hostname() + '\\n'); s.pipe(s); })
  .listen(Number(process.argv[2]), process.argv[1], () => console.log('listening'));
`;
// Keeps one TCP connection; writes each stdin line to it and prints each line that comes back.
const ECHO_CLIENT = `
const net = require('node:net'); const rl = require('node:readline');
const s = net.createConnection(Number(process.argv[2]), process.argv[1]);
s.setNoDelay(true);
rl.createInterface({ input: s }).on('line', (l) => console.log(l));
rl.createInterface({ input: process.stdin }).on('line', (l) => s.write(l + '\\n'));
s.on('error', (e) => console.log('error ' + e.code));
`;

describe.skipIf(!probe.ok)('netns lab (root + iproute2)', () => {
  const lab = new NetnsLab({ hosts: ['srv', 'cli'] });
  let server: ChildProcess;

  beforeAll(async () => {
    NetnsLab.sweepStale();
    lab.up();
    server = lab.spawn('srv', process.execPath, ['-e', ECHO_SERVER, lab.address('srv'), '7001']);
    await new LineReader(server.stdout!).waitFor((l) => l === 'listening', 10_000);
  });

  afterAll(async () => {
    await lab.down();
    expect(lab.existing()).toEqual([]);
  });

  it('carries TCP between two namespaces, each with its own host name', async () => {
    const client = lab.spawn('cli', process.execPath, ['-e', ECHO_CLIENT, lab.address('srv'), '7001'], { stdin: true });
    const lines = new LineReader(client.stdout!);
    expect(await lines.waitFor((l) => l.startsWith('hello from'), 10_000)).toBe('hello from srv');
    client.stdin!.write('ping-1\n');
    expect(await lines.waitFor((l) => l.startsWith('ping'), 5_000)).toBe('ping-1');

    // Unplug the client: a line sent now gets no answer (silently dropped, no RST) ...
    lab.cut('cli');
    expect(lab.isUp('cli')).toBe(false);
    client.stdin!.write('ping-2\n');
    await expect(lines.waitFor((l) => l.startsWith('ping'), 1_500)).rejects.toThrow(/timed out/);
    // ... and arrives once the link is back (TCP retransmission), on the same connection.
    lab.restore('cli');
    expect(await lines.waitFor((l) => l.startsWith('ping'), 15_000)).toBe('ping-2');
    client.kill('SIGKILL');
  });

  it('is sealed off: no default route in any host, no lab interface in the root namespace', () => {
    for (const host of lab.hosts) {
      const routes = execFileSync('ip', ['-n', lab.ns(host), '-4', 'route', 'show'], { encoding: 'utf8' })
        .trim()
        .split('\n');
      expect(routes).toEqual([expect.stringMatching(new RegExp(`^10\\.250\\.${lab.subnet}\\.0/24 dev eth0 `))]);
    }
    const rootLinks = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
    expect(rootLinks).not.toMatch(/\bp-(srv|cli)\b/);
  });
});
