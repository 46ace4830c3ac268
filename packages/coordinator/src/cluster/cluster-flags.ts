import type { Command } from 'commander';
import { DptrainError, type ProtocolOptions } from '@dptrain/core';

/** Flags shared by `coordinator`, `single` and `worker` for protocol timings. */
export interface ProtocolFlagValues {
  heartbeatMs?: string;
  lostAfterMs?: string;
  maxPayloadMb?: string;
}

export function addProtocolFlags(cmd: Command): Command {
  return cmd
    .option('--heartbeat-ms <ms>', 'heartbeat interval (default 1000)')
    .option('--lost-after-ms <ms>', 'a silent peer is declared lost after this long (default 5000)')
    .option('--max-payload-mb <mb>', 'largest frame accepted, in MiB (default 512)');
}

function positive(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new DptrainError('E_CONFIG', `${flag}: '${v}' is not a positive number`);
  return n;
}

export function toProtocolOptions(f: ProtocolFlagValues): ProtocolOptions {
  const out: ProtocolOptions = {};
  const hb = positive(f.heartbeatMs, '--heartbeat-ms');
  const lost = positive(f.lostAfterMs, '--lost-after-ms');
  const mb = positive(f.maxPayloadMb, '--max-payload-mb');
  if (hb !== undefined) out.heartbeatIntervalMs = hb;
  if (lost !== undefined) out.lostAfterMs = lost;
  if (mb !== undefined) out.maxPayload = Math.round(mb * 1024 * 1024);
  return out;
}

/** HOST:PORT (IPv6 as [addr]:port). */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(value) ?? /^()()(\d+)$/.exec(value);
  if (!m) throw new DptrainError('E_CONFIG', `--listen: '${value}' is not HOST:PORT`);
  const port = Number(m[3]);
  if (port > 65535) throw new DptrainError('E_CONFIG', `--listen: port ${port} is out of range`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}
