import type { ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { spawnLocalShard } from './local-shards.js';

/** Options of {@link AgentShard}. */
export interface AgentShardOptions {
  /** The coordinator's URL (the agent's upstream). Required. */
  url: string;
  /** The run's shared secret (the shard authenticates like the agent). Required. */
  token: string;
  /** PEM CA file trusted for the coordinator's wss://. Default: the system CAs. */
  ca?: string;
  /** Heartbeat interval of the shard's link to the coordinator, ms (the agent's). Default: the protocol's (1000). */
  heartbeatIntervalMs?: number;
  /** The shard gives the coordinator up after this much silence, ms (the agent's). Default: the protocol's (5000). */
  lostAfterMs?: number;
  /**
   * Address the other machines' agents reach this shard on. Default: this machine's address on the route to the
   * coordinator (the local end of a UDP socket connected to it; no packet is sent).
   */
  advertiseHost?: string;
  /**
   * PEM certificate and key the shard serves the other agents with, over wss:// (`--shard-tls-cert/--shard-tls-key`).
   * Default: plain ws:// (with a warning when the coordinator itself is wss://).
   */
  tls?: { cert: string; key: string };
  /** Progress lines. Required. */
  log: (message: string) => void;
}

/** This machine's address on the route to `host` (what a TCP connection to it would come from). */
export async function routeAddress(host: string, port: number): Promise<string> {
  const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(port, host, () => resolve());
    });
    return socket.address().address;
  } finally {
    socket.close();
  }
}

/**
 * The shard an agent runs beside itself for `--shards auto` (the coordinator's `shard_host`): one `dptrain shard`
 * child process on this machine, serving the other agents on this machine's address. It joins the coordinator on
 * its own connection, like any shard; the agent takes weights only from the shards the coordinator's map names, its
 * own included. The child exits with the agent (even on its kill -9: --exit-with-parent); a child that died (a
 * kill -9 of the shard: the run rolls back) is started again at the next request.
 */
export class AgentShard {
  private child: ChildProcess | undefined;

  constructor(private readonly opts: AgentShardOptions) {}

  /** Whether the shard process is up. */
  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the shard unless it is up. */
  async start(): Promise<void> {
    if (this.running) return;
    const o = this.opts;
    const coordinator = new URL(o.url);
    const host = o.advertiseHost ?? (await routeAddress(coordinator.hostname.replace(/^\[|\]$/g, ''), Number(coordinator.port) || 80));
    const args = [
      ...(o.ca ? ['--ca', o.ca] : []),
      ...(o.heartbeatIntervalMs ? ['--heartbeat-ms', String(o.heartbeatIntervalMs)] : []),
      ...(o.lostAfterMs ? ['--lost-after-ms', String(o.lostAfterMs)] : []),
      ...(o.tls ? ['--tls-cert', o.tls.cert, '--tls-key', o.tls.key] : []),
    ];
    if (!o.tls && coordinator.protocol === 'wss:') {
      o.log(
        'warning: the coordinator is wss:// but the shard beside this agent serves plain ws:// (gradients and weights unencrypted between machines): give the agent --shard-tls-cert and --shard-tls-key',
      );
    }
    const listen = host.includes(':') ? `[${host}]:0` : `${host}:0`;
    const child = spawnLocalShard({ url: o.url, token: o.token, listen, args });
    child.once('exit', (code, signal) => o.log(`shard beside this agent (pid ${child.pid}) exited (${signal ?? `status ${code}`})`));
    this.child = child;
    o.log(`started a shard beside this agent (--shards auto): pid ${child.pid}, serving the other agents on ${o.tls ? 'wss' : 'ws'}://${host}`);
  }

  /** Stops the shard (SIGTERM; it leaves the coordinator), waiting up to `graceMs` before a SIGKILL. */
  async stop(graceMs = 5000): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
}
