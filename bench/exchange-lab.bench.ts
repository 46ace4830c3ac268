// The exchange lab: H network namespaces act as hosts, each with G synthetic workers (real protocol, real-size
// gradients, no model); the coordinator has a namespace and a link of its own; every link is a veth pair limited
// with tc (token bucket, optional netem delay). For each configuration and topology it times the step exchange
// (median of rounds) and reads the bytes from the veth counters. Run: `npm run bench -- --exchange-lab [--json F]`
// or `npx tsx bench/exchange-lab.bench.ts [flags]` (flags in EXCHANGE_LAB_FLAGS). Needs root and ip/tc; skips
// (exit 0) saying why otherwise.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { NetnsLab, type LinkBytes } from '../test/deploy/netns-lab.testutil.js';
import { fitExchange, lowerBoundMs, projectExchange, ringBoundMs, type ExchangeFit, type ProjectionRow } from './exchange-lab/bounds.js';
import { createLabData, LabRun, topologyAvailable, type LabTopology } from './exchange-lab/lab-run.js';

/** Options of {@link benchExchangeLab}. */
export interface ExchangeLabOptions {
  /** Host counts to sweep. Default [2, 4]. */
  hosts?: number[];
  /** Synthetic workers per host to sweep. Default [1, 2, 4]. */
  workersPerHost?: number[];
  /** Topologies. Default ['star', 'hierarchical', 'sharded'] (those not in this tree are reported as unavailable). */
  topologies?: LabTopology[];
  /** Link rate, Mbit/s each way. Default 1000. */
  linkMbit?: number;
  /** One-way delay per link end, ms (netem). Default 0. */
  delayMs?: number;
  /** Floats per gradient and weights copy. Default 9.2e6 (VGG16 block5 + the flatten head). */
  floats?: number;
  /** Timed steps per configuration, after one warm-up step; the median is reported. Default 3. */
  rounds?: number;
  /** Compute time per step assumed by the projection, ms. Default 30 (a GPU step). */
  computeMs?: number;
  /** Workers (GPUs) per machine in the projection. Default 4. */
  projectWorkersPerHost?: number;
  /** Longest wait for a configuration's processes to start, join and warm up, ms. Default 300000. */
  startTimeoutMs?: number;
  /** Progress lines. Default console.log. */
  log?: (line: string) => void;
}

/** One row of the JSON's `exchangeLab` list. */
export interface ExchangeLabEntry {
  topology: LabTopology;
  hosts: number;
  workersPerHost: number;
  linkMbit: number;
  floats: number;
  /** Median step exchange (gradients gathered and merged, Adam, weights broadcast and acknowledged), ms. */
  exchangeMs: number;
  /** Every timed step, ms. */
  roundsMs: number[];
  /** Bytes through the coordinator's link per step, both directions (veth counters). */
  coordinatorBytesPerStep: number;
  /** Bytes through the busiest link per step, both directions (veth counters). */
  maxLinkBytesPerStep: number;
  /** The busiest direction of the busiest link per step (what the lower bound divides by the rate). */
  maxLinkOneWayBytesPerStep: number;
  /** This topology's wire-time lower bound, ms. */
  lowerBoundMs: number;
  /** Ring all-reduce over the same machines and links, ms. */
  ringBoundMs: number;
  /** Peers the coordinator lost during the configuration (a starved or cut peer; 0 in a clean measurement). */
  lostPeers: number;
  /** Median time until the coordinator held the merged gradient (star, hierarchical; the rest is Adam + broadcast), ms. */
  gatherMs?: number;
  /** Median of the slowest peer's time from the step's receipt to its reply (an agent: its local gather and merge), ms. */
  peerComputeMs: number;
}

export interface ExchangeLabResult {
  exchangeLab: ExchangeLabEntry[];
  /** Topologies that could not run, and why. */
  unavailable: { topology: LabTopology; reason: string }[];
  fits: ExchangeFit[];
  projection: { computeMs: number; workersPerHost: number; rows: ProjectionRow[] };
  /** Set when the lab could not run at all. */
  skipped?: string;
}

export const EXCHANGE_LAB_DEFAULTS = {
  hosts: [2, 4],
  workersPerHost: [1, 2, 4],
  topologies: ['star', 'hierarchical', 'sharded'] as LabTopology[],
  linkMbit: 1000,
  delayMs: 0,
  floats: 9_200_000,
  rounds: 3,
  computeMs: 30,
  projectWorkersPerHost: 4,
  startTimeoutMs: 300_000,
};

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round1 = (x: number): number => Math.round(x * 10) / 10;

function delta(before: Map<string, LinkBytes>, after: Map<string, LinkBytes>, host: string): LinkBytes {
  const b = before.get(host)!;
  const a = after.get(host)!;
  return { sent: a.sent - b.sent, received: a.received - b.received };
}

/** Runs the sweep; returns the entries, fits and projection (or `skipped` with the reason). */
export async function benchExchangeLab(options: ExchangeLabOptions = {}): Promise<ExchangeLabResult> {
  const o = { ...EXCHANGE_LAB_DEFAULTS, ...options };
  const log = options.log ?? ((l: string) => console.log(l));
  const modelBytes = o.floats * 4;
  const result: ExchangeLabResult = {
    exchangeLab: [],
    unavailable: [],
    fits: [],
    projection: { computeMs: o.computeMs, workersPerHost: o.projectWorkersPerHost, rows: [] },
  };
  const probe = NetnsLab.probeShaping();
  if (!probe.ok) {
    log(`exchange lab skipped: ${probe.reason}`);
    return { ...result, skipped: probe.reason };
  }
  const topologies: LabTopology[] = [];
  for (const t of o.topologies) {
    const a = topologyAvailable(t);
    if (a.ok) topologies.push(t);
    else {
      result.unavailable.push({ topology: t, reason: a.reason });
      log(`  ${t}: not available: ${a.reason}`);
    }
  }
  NetnsLab.sweepStale();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'dptrain-exchange-lab-'));
  try {
    await createLabData(dataDir);
    await sweep(o, topologies, dataDir, result, log);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
  printRatios(result.exchangeLab, log);
  for (const t of topologies) {
    const fit = fitExchange(
      t,
      result.exchangeLab.filter((e) => e.topology === t).map((e) => ({ boundMs: e.lowerBoundMs, ms: e.exchangeMs })),
    );
    if (fit) result.fits.push(fit);
  }
  result.projection.rows = projectExchange(result.fits, { modelBytes, computeMs: o.computeMs, workersPerHost: o.projectWorkersPerHost });
  printProjection(result, log);
  return result;
}

/** Every configuration of the sweep, one lab per host count; appends to `result.exchangeLab`. */
async function sweep(
  o: typeof EXCHANGE_LAB_DEFAULTS,
  topologies: LabTopology[],
  dataDir: string,
  result: ExchangeLabResult,
  log: (l: string) => void,
): Promise<void> {
  const modelBytes = o.floats * 4;
  let port = 7420;
  for (const h of o.hosts) {
    const hosts = Array.from({ length: h }, (_, i) => `h${i + 1}`);
    const lab = new NetnsLab({ hosts: ['c', ...hosts] });
    try {
      lab.up();
      for (const host of lab.hosts) lab.shape(host, { rateMbit: o.linkMbit, delayMs: o.delayMs });
      for (const g of o.workersPerHost) {
        for (const topology of topologies) {
          const run = LabRun.start({
            lab,
            dataDir,
            coordinatorHost: 'c',
            hosts,
            workersPerHost: g,
            topology,
            floats: o.floats,
            steps: o.rounds,
            // one sample (one micro-batch) per worker and step: every peer takes exactly its equal share
            batchCapacity: 1,
            waitForGo: true,
            port: port++,
          });
          try {
            await run.next('ready', o.startTimeoutMs);
            const before = lab.linkBytes();
            run.go();
            await run.next('done', 600_000);
            const after = lab.linkBytes();
            const timed = run.events.filter((e) => e.event === 'step' && (e.step as number) > 0);
            const times = timed.map((e) => e.ms as number);
            const gathers = timed.flatMap((e) => (typeof e.gatherMs === 'number' ? [e.gatherMs] : []));
            const peerMs = timed.map((e) => Math.max(0, ...(e.workers as { computeMs: number }[]).map((w) => w.computeMs)));
            const links = lab.hosts.map((host) => delta(before, after, host));
            const coord = delta(before, after, 'c');
            const entry: ExchangeLabEntry = {
              topology,
              hosts: h,
              workersPerHost: g,
              linkMbit: o.linkMbit,
              floats: o.floats,
              exchangeMs: round1(median(times)),
              roundsMs: times.map(round1),
              coordinatorBytesPerStep: Math.round((coord.sent + coord.received) / o.rounds),
              maxLinkBytesPerStep: Math.round(Math.max(...links.map((l) => l.sent + l.received)) / o.rounds),
              maxLinkOneWayBytesPerStep: Math.round(Math.max(...links.map((l) => Math.max(l.sent, l.received))) / o.rounds),
              lowerBoundMs: round1(lowerBoundMs(topology, h, g, modelBytes, o.linkMbit)),
              ringBoundMs: round1(ringBoundMs(h, modelBytes, o.linkMbit)),
              lostPeers: run.events.filter((e) => e.event === 'lost').length,
              ...(gathers.length > 0 ? { gatherMs: round1(median(gathers)) } : {}),
              peerComputeMs: round1(median(peerMs)),
            };
            result.exchangeLab.push(entry);
            log(
              `  ${topology.padEnd(12)} ${h} hosts x ${g}: exchange ${entry.exchangeMs.toFixed(0).padStart(6)} ms` +
                `  (bound ${entry.lowerBoundMs.toFixed(0)} ms = ${(entry.exchangeMs / entry.lowerBoundMs).toFixed(2)}x;` +
                ` ring all-reduce ${entry.ringBoundMs.toFixed(0)} ms = ${(entry.exchangeMs / entry.ringBoundMs).toFixed(2)}x)` +
                `  coordinator ${(entry.coordinatorBytesPerStep / 1e6).toFixed(1)} MB/step, busiest link ${(entry.maxLinkBytesPerStep / 1e6).toFixed(1)} MB/step` +
                `  rounds ${entry.roundsMs.map((t) => t.toFixed(0)).join(', ')}` +
                (entry.gatherMs !== undefined ? `  gather ${entry.gatherMs.toFixed(0)} ms` : '') +
                `  slowest peer's own ${entry.peerComputeMs.toFixed(0)} ms` +
                (entry.lostPeers > 0 ? `  (${entry.lostPeers} peer(s) lost: not a clean figure)` : ''),
            );
            await run.finish(30_000);
          } finally {
            run.stop();
          }
        }
      }
    } finally {
      await lab.down();
    }
  }
}

function printRatios(entries: ExchangeLabEntry[], log: (l: string) => void): void {
  const star = (e: ExchangeLabEntry) => entries.find((s) => s.topology === 'star' && s.hosts === e.hosts && s.workersPerHost === e.workersPerHost);
  const others = entries.filter((e) => e.topology !== 'star' && star(e));
  if (others.length > 0) log('  vs star:');
  for (const e of others) log(`    ${e.topology} ${e.hosts} hosts x ${e.workersPerHost}: ${(e.exchangeMs / star(e)!.exchangeMs).toFixed(2)}x star`);
  for (const t of new Set(entries.map((e) => e.topology))) {
    for (const g of new Set(entries.map((e) => e.workersPerHost))) {
      const two = entries.find((e) => e.topology === t && e.hosts === 2 && e.workersPerHost === g);
      const four = entries.find((e) => e.topology === t && e.hosts === 4 && e.workersPerHost === g);
      if (two && four) log(`    ${t} x ${g}: 2 -> 4 hosts grows ${(four.exchangeMs / two.exchangeMs).toFixed(2)}x`);
    }
  }
}

function printProjection(r: ExchangeLabResult, log: (l: string) => void): void {
  if (r.fits.length === 0) return;
  const p = r.projection;
  log(
    `  projection: exchangeMs = slope x lower bound + overhead, fitted per topology to the rows above (least squares);` +
      ` N workers on N/${p.workersPerHost} machines, one link each, every step computes ${p.computeMs} ms then exchanges` +
      ` (no overlap); efficiency = compute / (compute + exchange). The fit lumps per-byte CPU costs with the wire, so on` +
      ` faster links than the lab's it is optimistic where the CPU, not the link, is the limit.`,
  );
  for (const f of r.fits) log(`    ${f.topology}: slope ${f.slope.toFixed(2)}, overhead ${f.overheadMs.toFixed(0)} ms (${f.points} points)`);
  for (const row of p.rows) {
    log(
      `    ${row.topology.padEnd(12)} N=${String(row.workers).padStart(3)} (${row.hosts} machines) ${String(row.linkGbit).padStart(3)} GbE:` +
        ` exchange ${row.exchangeMs.toFixed(1).padStart(7)} ms, efficiency ${(100 * row.efficiency).toFixed(1)} %`,
    );
  }
}

/** Flags of the lab (`npm run bench -- --exchange-lab ...` passes them on). */
export const EXCHANGE_LAB_FLAGS = {
  'lab-hosts': { type: 'string' },
  'lab-workers-per-host': { type: 'string' },
  'lab-topologies': { type: 'string' },
  'lab-link-mbit': { type: 'string' },
  'lab-delay-ms': { type: 'string' },
  'lab-floats': { type: 'string' },
  'lab-rounds': { type: 'string' },
  'lab-compute-ms': { type: 'string' },
} as const;

const list = (s: string | undefined): number[] | undefined => s?.split(',').filter(Boolean).map(Number);

/** Options from parsed EXCHANGE_LAB_FLAGS values. */
export function exchangeLabOptionsFromFlags(v: Partial<Record<keyof typeof EXCHANGE_LAB_FLAGS, string>>): ExchangeLabOptions {
  const o: ExchangeLabOptions = {};
  const num = (s: string | undefined): number | undefined => (s === undefined ? undefined : Number(s));
  if (v['lab-hosts']) o.hosts = list(v['lab-hosts'])!;
  if (v['lab-workers-per-host']) o.workersPerHost = list(v['lab-workers-per-host'])!;
  if (v['lab-topologies']) o.topologies = v['lab-topologies'].split(',').filter(Boolean) as LabTopology[];
  const set = <K extends keyof ExchangeLabOptions>(k: K, s: string | undefined): void => {
    if (s !== undefined) (o as Record<string, unknown>)[k] = num(s);
  };
  set('linkMbit', v['lab-link-mbit']);
  set('delayMs', v['lab-delay-ms']);
  set('floats', v['lab-floats']);
  set('rounds', v['lab-rounds']);
  set('computeMs', v['lab-compute-ms']);
  return o;
}

/** The JSON file's content for a lab run. */
export function exchangeLabJson(r: ExchangeLabResult): Record<string, unknown> {
  return {
    date: new Date().toISOString(),
    machine: { cpu: os.cpus()[0]?.model ?? 'cpu', cores: os.availableParallelism(), loadavg: os.loadavg(), node: process.version },
    ...r,
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { json: { type: 'string' }, ...EXCHANGE_LAB_FLAGS }, allowPositionals: false });
  const r = await benchExchangeLab(exchangeLabOptionsFromFlags(values));
  if (values.json) writeFileSync(values.json, `${JSON.stringify(exchangeLabJson(r), null, 2)}\n`);
}
