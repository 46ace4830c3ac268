/**
 * A throw-away "cluster of hosts" on one Linux machine: one network namespace per host, each joined by a veth
 * pair to a bridge that lives in a hub namespace of its own. Nothing is attached to the root namespace, so no
 * packet can leave the lab; addresses are 10.250.<subnet>.<n>/24 and exist only inside the lab's namespaces.
 *
 * Needs root (CAP_SYS_ADMIN + CAP_NET_ADMIN) and iproute2's `ip`. `NetnsLab.probe()` says whether the lab can
 * run here and, when not, why; `NetnsLab.probeShaping()` whether links can also be limited with `tc` (`shape`).
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/** Options of {@link NetnsLab}. */
export interface NetnsLabOptions {
  /** Short host names, one namespace each (1..8 characters, [a-z0-9]). Required. */
  hosts: string[];
  /** Third octet of the lab's 10.250.X.0/24 subnet. Default: random in 0..255. */
  subnet?: number;
  /** Namespace name prefix; must be unique per lab. Default: `dpt-<pid>-<random hex>`. */
  prefix?: string;
}

/** Options of {@link NetnsLab.spawn}. */
export interface LabSpawnOptions {
  /** Working directory. Default: process.cwd(). */
  cwd?: string;
  /** Environment. Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** Give the process its own UTS namespace with this host name (so `os.hostname()` differs per host). Default: the lab host name. */
  hostname?: string | false;
  /** Give the process a writable stdin pipe. Default: false (stdin ignored). */
  stdin?: boolean;
}

/** A host's link: a token-bucket rate limit on both ends of its veth (upload and download), optionally a delay. */
export interface LinkShape {
  /** Rate of each direction, Mbit/s. Required. */
  rateMbit: number;
  /** One-way delay added on each end (netem), ms. Default 0 (no netem). */
  delayMs?: number;
  /** Token-bucket burst, KiB (at least one 64 KiB GSO packet). Default 256. */
  burstKiB?: number;
  /** Most time a packet may wait in the token bucket's queue, ms (sets its length). Default 50. */
  queueMs?: number;
}

/** Bytes through a host's link so far, from its switch port's counters (/sys/class/net/PORT/statistics). */
export interface LinkBytes {
  /** Bytes the host sent (its upload). */
  sent: number;
  /** Bytes the host received (its download). */
  received: number;
}

/** Result of {@link NetnsLab.probe}. */
export type LabProbe = { ok: true } | { ok: false; reason: string };

const NAME = /^[a-z0-9]{1,8}$/;
const PREFIX_ROOT = 'dpt-';

function run(command: 'ip' | 'tc', args: string[]): string {
  return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
}
const ip = (args: string[]): string => run('ip', args);
const tc = (args: string[]): string => run('tc', args);

function hasCommand(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 5_000 });
    return true;
  } catch {
    return false;
  }
}

export class NetnsLab {
  readonly prefix: string;
  readonly subnet: number;
  readonly hosts: readonly string[];
  private readonly children = new Set<ChildProcess>();
  private created: string[] = [];

  constructor(options: NetnsLabOptions) {
    for (const h of options.hosts) if (!NAME.test(h)) throw new Error(`netns lab: bad host name '${h}' (use [a-z0-9]{1,8})`);
    if (new Set(options.hosts).size !== options.hosts.length) throw new Error('netns lab: duplicate host names');
    if (options.hosts.length > 250) throw new Error('netns lab: at most 250 hosts');
    this.hosts = [...options.hosts];
    this.subnet = options.subnet ?? randomBytes(1)[0]!;
    this.prefix = options.prefix ?? `${PREFIX_ROOT}${process.pid}-${randomBytes(3).toString('hex')}`;
  }

  /** Whether a lab can be built here: root, `ip` present, and namespaces + bridges allowed by the kernel. */
  static probe(): LabProbe {
    if (process.platform !== 'linux') return { ok: false, reason: `network namespaces need Linux (this is ${process.platform})` };
    if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
      return { ok: false, reason: 'not root: creating network namespaces needs root (CI runs as root)' };
    }
    if (!hasCommand('ip', ['-V'])) return { ok: false, reason: "iproute2's `ip` command is not installed (apt-get install iproute2)" };
    if (!hasCommand('unshare', ['--version'])) return { ok: false, reason: "util-linux's `unshare` command is not installed" };
    if (!hasCommand('hostname', ['--version'])) return { ok: false, reason: 'the `hostname` command is not installed' };
    const probe = `${PREFIX_ROOT}${process.pid}-probe${randomBytes(2).toString('hex')}`;
    try {
      ip(['netns', 'add', probe]);
      ip(['-n', probe, 'link', 'add', 'br0', 'type', 'bridge']);
    } catch (err) {
      const msg = (err as { stderr?: string }).stderr?.trim() || (err as Error).message;
      return { ok: false, reason: `the kernel refused a network namespace with a bridge (${msg}); a container without CAP_SYS_ADMIN/CAP_NET_ADMIN?` };
    } finally {
      try {
        ip(['netns', 'del', probe]);
      } catch {
        /* never created */
      }
    }
    return { ok: true };
  }

  /** Whether links can be shaped here: `probe()` passes, `tc` is installed and the kernel has the token-bucket qdisc. */
  static probeShaping(): LabProbe {
    const base = NetnsLab.probe();
    if (!base.ok) return base;
    if (!hasCommand('tc', ['-V'])) return { ok: false, reason: "iproute2's `tc` command is not installed (apt-get install iproute2)" };
    const probe = `${PREFIX_ROOT}${process.pid}-probe${randomBytes(2).toString('hex')}`;
    try {
      ip(['netns', 'add', probe]);
      ip(['-n', probe, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb']);
      tc(['-n', probe, 'qdisc', 'add', 'dev', 'va', 'root', 'tbf', 'rate', '1000mbit', 'burst', '256kb', 'latency', '50ms']);
    } catch (err) {
      const msg = (err as { stderr?: string }).stderr?.trim() || (err as Error).message;
      return { ok: false, reason: `the kernel refused a token-bucket qdisc (${msg}); sch_tbf missing?` };
    } finally {
      try {
        ip(['netns', 'del', probe]);
      } catch {
        /* never created */
      }
    }
    return { ok: true };
  }

  /** Deletes namespaces left behind by earlier labs whose process is gone (never another live lab's). */
  static sweepStale(): string[] {
    const removed: string[] = [];
    let list = '';
    try {
      list = ip(['netns', 'list']);
    } catch {
      return removed;
    }
    for (const line of list.split('\n')) {
      const name = line.split(' ')[0] ?? '';
      const m = /^dpt-(\d+)-/.exec(name);
      if (!m) continue;
      const pid = Number(m[1]);
      let alive = true;
      try {
        process.kill(pid, 0);
      } catch {
        alive = false;
      }
      if (alive) continue;
      try {
        ip(['netns', 'del', name]);
        removed.push(name);
      } catch {
        /* someone else removed it */
      }
    }
    return removed;
  }

  /** Namespace of a host (or of the hub with `'hub'`). */
  ns(host: string): string {
    return `${this.prefix}-${host}`;
  }

  /** IPv4 address of a host inside the lab. */
  address(host: string): string {
    const i = this.hosts.indexOf(host);
    if (i < 0) throw new Error(`netns lab: no host '${host}'`);
    return `10.250.${this.subnet}.${i + 1}`;
  }

  /** Name of the hub-side end of a host's veth pair (the "switch port"). */
  private port(host: string): string {
    return `p-${host}`;
  }

  /** Creates the hub with its bridge and one namespace per host, each wired to the bridge and addressed. */
  up(): void {
    const hub = this.ns('hub');
    ip(['netns', 'add', hub]);
    this.created.push(hub);
    ip(['-n', hub, 'link', 'add', 'br0', 'type', 'bridge']);
    ip(['-n', hub, 'link', 'set', 'br0', 'up']);
    for (const host of this.hosts) {
      const ns = this.ns(host);
      ip(['netns', 'add', ns]);
      this.created.push(ns);
      ip(['-n', hub, 'link', 'add', this.port(host), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      ip(['-n', hub, 'link', 'set', this.port(host), 'master', 'br0']);
      ip(['-n', hub, 'link', 'set', this.port(host), 'up']);
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      ip(['-n', ns, 'addr', 'add', `${this.address(host)}/24`, 'dev', 'eth0']);
      ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
    }
  }

  /** Starts a command inside a host's namespace (its own host name too). The lab kills it on `down()`. */
  spawn(host: string, command: string, args: string[], options: LabSpawnOptions = {}): ChildProcess {
    const hostname = options.hostname === undefined ? host : options.hostname;
    const argv = ['netns', 'exec', this.ns(host)];
    // `unshare --uts` + `hostname` give the process a host name of its own, as on a separate machine.
    if (hostname !== false) argv.push('unshare', '--uts', 'sh', '-c', 'hostname "$0" && exec "$@"', hostname);
    argv.push(command, ...args);
    const spawnOptions: SpawnOptions = {
      cwd: options.cwd ?? process.cwd(),
      env: options.env ?? process.env,
      stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    };
    const child = spawn('ip', argv, spawnOptions);
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /**
   * Limits a host's link: a token bucket (and a netem delay when asked) on the host's end (its upload) and on its
   * switch port (its download). Call after `up()`; calling again replaces the limits.
   */
  shape(host: string, shape: LinkShape): void {
    if (!(shape.rateMbit > 0)) throw new Error(`netns lab: link rate must be positive (got ${shape.rateMbit} Mbit/s)`);
    const burst = `${shape.burstKiB ?? 256}kb`;
    const queue = `${shape.queueMs ?? 50}ms`;
    for (const [ns, dev] of [
      [this.ns(host), 'eth0'],
      [this.ns('hub'), this.port(host)],
    ] as const) {
      tc(['-n', ns, 'qdisc', 'replace', 'dev', dev, 'root', 'handle', '1:', 'tbf', 'rate', `${shape.rateMbit}mbit`, 'burst', burst, 'latency', queue]);
      if (shape.delayMs) {
        try {
          tc(['-n', ns, 'qdisc', 'replace', 'dev', dev, 'parent', '1:1', 'handle', '10:', 'netem', 'delay', `${shape.delayMs}ms`]);
        } catch (err) {
          const msg = (err as { stderr?: string }).stderr?.trim() || (err as Error).message;
          throw new Error(`netns lab: a link delay needs the netem qdisc, which this kernel refused (${msg}); run without a delay`);
        }
      }
    }
  }

  /** Bytes through each host's link so far, read from the switch ports' counters in one go. */
  linkBytes(): Map<string, LinkBytes> {
    const files = this.hosts.flatMap((h) => ['rx_bytes', 'tx_bytes'].map((f) => `/sys/class/net/${this.port(h)}/statistics/${f}`));
    const out = execFileSync('ip', ['netns', 'exec', this.ns('hub'), 'cat', ...files], { encoding: 'utf8', timeout: 10_000 });
    const values = out.trim().split('\n').map(Number);
    // the switch port receives what the host sends, and transmits what the host receives
    return new Map(this.hosts.map((h, i) => [h, { sent: values[2 * i]!, received: values[2 * i + 1]! }]));
  }

  /** Unplugs a host's cable: its switch port goes down, so packets to and from it vanish silently (no RST, no FIN). */
  cut(host: string): void {
    ip(['-n', this.ns('hub'), 'link', 'set', this.port(host), 'down']);
  }

  /** Plugs the cable back in. */
  restore(host: string): void {
    ip(['-n', this.ns('hub'), 'link', 'set', this.port(host), 'up']);
  }

  /** Whether a host's switch port is up. */
  isUp(host: string): boolean {
    const out = ip(['-n', this.ns('hub'), '-o', 'link', 'show', this.port(host)]);
    return /[<,]UP[,>]/.test(out);
  }

  /** Kills every process the lab started (SIGKILL, by pid) and deletes its namespaces. Safe to call twice. */
  async down(): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const child of this.children) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      waits.push(new Promise<void>((resolve) => child.once('exit', () => resolve())));
      child.kill('SIGKILL');
    }
    await Promise.race([Promise.all(waits), new Promise((r) => setTimeout(r, 5_000))]);
    for (const ns of this.created.reverse()) {
      try {
        ip(['netns', 'del', ns]);
      } catch {
        /* already gone */
      }
    }
    this.created = [];
  }

  /** Namespaces of this lab that currently exist (for the cleanup check). */
  existing(): string[] {
    const list = ip(['netns', 'list']);
    return list
      .split('\n')
      .map((l) => l.split(' ')[0] ?? '')
      .filter((n) => n.startsWith(`${this.prefix}-`));
  }
}
