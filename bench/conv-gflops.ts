// Achieved GFLOP/s of the VGG16 block5 convolution (3x3, 512 -> 512 at 9x9, 'same', batch 8) on one core, as the
// native backend runs it (forward, backward data, backward weights), in fp32 (Winograd and direct) and bf16, against
// the peak of the ISA each kernel runs on. Part of `npm run bench`; alone: `npx tsx bench/conv-gflops.ts [--batch 8]`.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { loadAddon, type ConvAlgorithm, type NativePrecision } from '@dptrain/backend-native';

/**
 * Peak FLOP per cycle of one core, by ISA: fp32 AVX-512 FMA (2 FMA ports x 16 lanes x 2), AVX512-BF16 dot products
 * (VDPBF16PS: 2 ports x 16 lanes x 2 products x 2), AMX-BF16 (TDPBF16PS: 1024 per cycle, Intel's figure for Sapphire
 * Rapids). Assumptions of the table, not measurements.
 */
export const PEAK_FLOP_PER_CYCLE = { avx512_fp32: 64, avx512_bf16: 128, amx_bf16: 1024 } as const;

export interface ConvGflopsRow {
  variant: string;
  precision: NativePrecision;
  algorithm: ConvAlgorithm;
  pass: 'forward' | 'backward data' | 'backward weights';
  /** oneDNN implementation that ran. */
  impl: string;
  ms: number;
  /** Direct-convolution FLOPs (2 per multiply-add) / time: Winograd does fewer multiplications, so it may beat the peak. */
  gflops: number;
  isa: keyof typeof PEAK_FLOP_PER_CYCLE;
  peak_gflops: number;
  /** gflops / peak_gflops. */
  of_peak: number;
}

export interface ConvGflopsResult {
  shape: string;
  mhz: number;
  rows: ConvGflopsRow[];
}

/** The core clock /proc/cpuinfo reports (MHz), 0 when unknown. */
function cpuMhz(): number {
  try {
    const m = /^cpu MHz\s*:\s*([\d.]+)/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function isaOf(impl: string, precision: NativePrecision): ConvGflopsRow['isa'] {
  if (precision === 'fp32') return 'avx512_fp32';
  return /amx/.test(impl) ? 'amx_bf16' : 'avx512_bf16';
}

/** The median wall time of `reps` calls of `run`, in ms, after `warmup` untimed calls (primitive creation). */
export function medianCallMs(run: () => void, reps: number, warmup = 2): number {
  for (let i = 0; i < warmup; i++) run();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    run();
    times.push(performance.now() - t0);
  }
  return times.sort((p, q) => p - q)[Math.floor(reps / 2)]!;
}

export async function benchConvGflops(opts: { batch?: number; quick?: boolean; log?: (l: string) => void } = {}): Promise<ConvGflopsResult> {
  const addon = loadAddon();
  const log = opts.log ?? ((l: string) => console.log(l));
  const B = opts.batch ?? 8;
  const H = 9;
  const C = 512;
  const reps = opts.quick ? 3 : 10;
  const xShape = [B, H, H, C];
  const wShape = [3, 3, C, C];
  const conv = [1, 1, 1, 1, 1, 1, 1, 1];
  const rand = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 0.5);
  const x = rand(B * H * H * C);
  const w = rand(9 * C * C);
  const dy = rand(B * H * H * C);
  const y = new Float32Array(B * H * H * C);
  const dx = new Float32Array(B * H * H * C);
  const dw = new Float32Array(9 * C * C);
  const flop = 2 * B * H * H * C * C * 9;
  const mhz = cpuMhz();
  const variants: { variant: string; precision: NativePrecision; algorithm: ConvAlgorithm }[] = [
    { variant: 'fp32 Winograd', precision: 'fp32', algorithm: 'winograd' },
    { variant: 'fp32 direct', precision: 'fp32', algorithm: 'direct' },
  ];
  if (addon.info().bf16Isa !== '') variants.push({ variant: 'bf16 direct', precision: 'bf16', algorithm: 'winograd' /* bf16 has no Winograd: direct */ });
  const before = { threads: addon.getNumThreads(), info: addon.info() };
  const rows: ConvGflopsRow[] = [];
  try {
    addon.setNumThreads(1);
    for (const v of variants) {
      addon.setPrecision(v.precision);
      addon.setConvAlgorithm(v.algorithm);
      addon.clearCache();
      const passes: [ConvGflopsRow['pass'], string, () => void][] = [
        ['forward', 'conv_fwd', () => addon.conv2d(x, xShape, w, wShape, null, y, xShape, conv, 0)],
        ['backward data', 'conv_bwd_data', () => addon.conv2dBackpropInput(dy, xShape, w, wShape, dx, xShape, conv)],
        ['backward weights', 'conv_bwd_weights', () => addon.conv2dBackpropFilter(x, xShape, dy, xShape, dw, wShape, conv)],
      ];
      for (const [pass, key, run] of passes) {
        const ms = medianCallMs(run, reps);
        const impl = addon.info().impl[key] ?? '?';
        const isa = isaOf(impl, v.precision);
        const peak = (PEAK_FLOP_PER_CYCLE[isa] * mhz) / 1000;
        const gflops = flop / ms / 1e6;
        rows.push({
          ...v,
          pass,
          impl,
          ms: Math.round(ms * 100) / 100,
          gflops: Math.round(gflops * 10) / 10,
          isa,
          peak_gflops: Math.round(peak),
          of_peak: peak > 0 ? Math.round((gflops / peak) * 1000) / 1000 : 0,
        });
      }
    }
  } finally {
    addon.setNumThreads(before.threads);
    addon.setPrecision(before.info.precision);
    addon.setConvAlgorithm('winograd');
    addon.clearCache();
  }
  log(
    `x [${xShape.join(', ')}], 3x3 ${C} -> ${C}, 'same'; ${(flop / 1e9).toFixed(2)} GFLOP per pass; 1 thread; core clock ${mhz} MHz (cpuinfo); median of ${reps}`,
  );
  log(
    `${'variant'.padEnd(14)} ${'pass'.padEnd(17)} ${'oneDNN kernel'.padEnd(30)} ${'ms'.padStart(8)} ${'GFLOP/s'.padStart(8)}  peak (ISA)                  of peak`,
  );
  for (const r of rows) {
    log(
      `${r.variant.padEnd(14)} ${r.pass.padEnd(17)} ${r.impl.padEnd(30)} ${r.ms.toFixed(2).padStart(8)} ${r.gflops.toFixed(1).padStart(8)}  ${`${r.peak_gflops} (${r.isa})`.padEnd(26)} ${(100 * r.of_peak).toFixed(1).padStart(6)} %`,
    );
  }
  return { shape: `x[${xShape.join(',')}] w[${wShape.join(',')}]`, mhz, rows };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { batch: { type: 'string', default: '8' }, quick: { type: 'boolean', default: false } } });
  await benchConvGflops({ batch: Number(values.batch), quick: values.quick });
}
