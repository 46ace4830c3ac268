import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { addonPathFromEnv, lazyBuildAllowed } from './env.js';

/** The compiled oneDNN addon (native/*.cc: addon.cc registers one entry point per kernel, one file per kernel family). Every call is synchronous and writes into the output array it is given. */
/** How the native backend runs 3x3 stride-1 convolutions (see NativeAddon.setConvAlgorithm). */
export type ConvAlgorithm = 'winograd' | 'direct';
/** Precision of the native convolutions and matmuls (see NativeAddon.setPrecision). */
export type NativePrecision = 'fp32' | 'bf16';
/** Which convolutions run bf16 in bf16 mode (see NativeAddon.setBf16Policy). */
export interface Bf16Policy {
  /** Depthwise convolutions run bf16 too. Default false (they measured 1.3-1.6x slower in bf16). */
  depthwise: boolean;
  /** A convolution runs bf16 only with at least this many FLOPs per activation value read or written. Default 24. */
  minIntensity: number;
}

export interface NativeAddon {
  /**
   * y = act(conv(x, filter) [+ bias]); shapes NHWC / HWIO; conv = [sh, sw, padTop, padLeft, padBottom, padRight, dh, dw]
   * plus an optional 9th element 1 for a depthwise conv (filter [kh, kw, C, M], run as a grouped convolution; the
   * backprops take it too). act: 0 (or false) linear, 1 (or true) relu, 2 relu6. filterId: a positive number per
   * filter tensor (the same number only for the same values); the addon then keeps the filter's reordered copy and
   * reuses it for the next call on that filter here or in conv2dBackpropInput (0 or absent: nothing kept).
   */
  conv2d(
    x: Float32Array,
    xShape: number[],
    filter: Float32Array,
    filterShape: number[],
    bias: Float32Array | null,
    y: Float32Array,
    yShape: number[],
    conv: number[],
    act: boolean | 0 | 1 | 2,
    filterId?: number,
  ): void;
  conv2dBackpropInput(
    dy: Float32Array,
    dyShape: number[],
    filter: Float32Array,
    filterShape: number[],
    dx: Float32Array,
    dxShape: number[],
    conv: number[],
    filterId?: number,
  ): void;
  conv2dBackpropFilter(x: Float32Array, xShape: number[], dy: Float32Array, dyShape: number[], dw: Float32Array, dwShape: number[], conv: number[]): void;
  /** c[B,M,N] = op(a)[BA,M,K] x op(b)[BB,K,N] [+ bias[N]] [relu]; dims = [BA, BB, M, N, K]; a batch of 1 broadcasts. */
  matMul(
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
    dims: number[],
    transposeA: boolean,
    transposeB: boolean,
    bias: Float32Array | null,
    relu: boolean,
  ): void;
  /** pool = [kh, kw, sh, sw, padTop, padLeft]. */
  maxPool(x: Float32Array, xShape: number[], y: Float32Array, yShape: number[], pool: number[]): void;
  maxPoolGrad(dy: Float32Array, x: Float32Array, xShape: number[], dx: Float32Array, yShape: number[], pool: number[]): void;
  /** out = a op b; op 0 add, 1 sub, 2 mul, 3 div; mode 0 same size, 1 b is [inner] repeated, 2 a repeated, 3 b scalar, 4 a scalar. */
  binary(op: number, a: Float32Array, b: Float32Array, out: Float32Array, mode: number, inner: number): void;
  /** out = a op b with general broadcasting: strides are 0 along the dims an operand broadcasts. */
  binaryStrided(op: number, a: Float32Array, b: Float32Array, out: Float32Array, outShape: number[], aStrides: number[], bStrides: number[]): void;
  /** op 0 relu, 1 step (x > 0 ? 1 : alpha), 2 clip to [alpha, beta]. */
  unary(op: number, x: Float32Array, out: Float32Array, alpha: number, beta?: number): void;
  /** Constant padding (rank 1..8): out[before + i] = x[i], value elsewhere. */
  pad(x: Float32Array, xShape: number[], out: Float32Array, outShape: number[], before: number[], value: number): void;
  /** out = x[begin : begin + outShape] (rank 1..8). */
  slice(x: Float32Array, xShape: number[], out: Float32Array, outShape: number[], begin: number[]): void;
  /** out = x repeated along each axis (outShape[d] a multiple of xShape[d]; rank 1..8). */
  tile(x: Float32Array, xShape: number[], out: Float32Array, outShape: number[]): void;
  /** out[i] = (x[i] - mean[c]) * scale[c] + offset[c], c = i % channels. */
  batchNorm(x: Float32Array, mean: Float32Array, scale: Float32Array, offset: Float32Array, out: Float32Array, channels: number): void;
  /**
   * The inference-form batch norm's gradients over rows of `channels`: dx = (dy r) scale, dScale = sum dy ((x - mean) r),
   * dOffset = sum dy, with r = rsqrt(variance + eps) given; the bits of tfjs's FusedBatchNorm gradient on this backend.
   */
  batchNormGrad(
    x: Float32Array,
    dy: Float32Array,
    mean: Float32Array,
    rsqrtVar: Float32Array,
    scale: Float32Array,
    dx: Float32Array,
    dScale: Float32Array,
    dOffset: Float32Array,
    channels: number,
  ): void;
  /** out = lo <= x <= hi ? dy : 0 (tfjs's ClipByValue gradient). */
  clipGrad(dy: Float32Array, x: Float32Array, out: Float32Array, lo: number, hi: number): void;
  /**
   * Adam (Keras form) in place over flat arrays: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g²;
   * w -= lrT m / (sqrt(v) + eps), computed in double exactly as core's AdamOptimizer does (bit-identical results).
   * Returns -1, or the first index whose new m, v or weight would not be finite in float32 (then nothing is written).
   */
  adamUpdate(w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, lrT: number, b1: number, b2: number, eps: number): number;
  /**
   * out[i] = float32(wa * a[i] + wb * b[i]) computed in double without FMA, the bits of core's JS merge (native/merge.cc);
   * `out` may be `a` or `b`. Returns the instruction set it ran: 'avx512' or 'scalar'.
   */
  mergeTwo(out: Float32Array, a: Float32Array, b: Float32Array, wa: number, wb: number): 'avx512' | 'scalar';
  /** Index of the first NaN or ±Infinity of `g`, or -1. */
  firstNonFinite(g: Float32Array): number;
  /**
   * out[k] = the float64 sum of squares of g's bucket k ([k b, (k + 1) b), b = `bucketFloats`), each summed in index
   * order: the bits of core's rangeSumOfSquares (native/merge.cc). `out` holds one value per bucket.
   */
  bucketSumsOfSquares(g: Float32Array, bucketFloats: number, out: Float64Array): void;
  /** out[o, i] = scale * sum_r x[o, r, i]. */
  reduceSum(x: Float32Array, out: Float32Array, outer: number, red: number, inner: number, scale: number): void;
  /** 'nhwc' (default: no reorders) or 'any' (oneDNN's blocked layouts, reordered around each call). */
  setActivationLayout(layout: 'nhwc' | 'any'): string;
  /**
   * 'winograd' (default): 3x3 stride-1 convolutions run as Winograd F(4x4, 3x3) where oneDNN has it for the shape,
   * direct elsewhere; 'direct': always direct. Returns the algorithm now in effect.
   */
  setConvAlgorithm(algorithm: ConvAlgorithm): ConvAlgorithm;
  /**
   * How many reordered filter copies the addon keeps per convolution shape (see conv2d's filterId; 0: none, every call
   * reorders the filter). Clears the copies kept. Returns the number now in effect.
   */
  setFilterCopies(copies: number): number;
  /**
   * 'fp32' (default) or 'bf16': convolutions (forward, both gradients; depthwise too) and matmuls take their
   * multiplied operands in bf16 and accumulate and write fp32; Winograd is fp32 only, so bf16 runs them direct.
   * A kernel oneDNN has no bf16 implementation for stays fp32 (listed in info().bf16Fallbacks once it ran).
   * Throws when bf16 is asked on a CPU without AVX512-BF16 or AMX. Returns the precision now in effect.
   */
  setPrecision(precision: NativePrecision): NativePrecision;
  /**
   * Which convolutions stay fp32 in bf16 mode, where fp32 measured faster (bench/conv-precision.ts): depthwise ones
   * unless `depthwise` is true, and those with fewer than `minIntensity` FLOPs per activation value,
   * 2 kh kw Cin Cout / (Cin + Cout). Returns the policy now in effect (default { depthwise: false, minIntensity: 24 }).
   */
  setBf16Policy(depthwise: boolean, minIntensity: number): Bf16Policy;
  /** Sets oneDNN's OpenMP thread count; returns the count now in effect. */
  setNumThreads(n: number): number;
  getNumThreads(): number;
  info(): {
    dnnl: string;
    cpuRuntime: string;
    threads: number;
    isa: string;
    /** 'amx', 'avx512_bf16', or '' when this CPU cannot run bf16. */
    bf16Isa: '' | 'amx' | 'avx512_bf16';
    precision: NativePrecision;
    /** Kernels that ran fp32 in bf16 mode for lack of a oneDNN bf16 implementation (conv_fwd, dw_bwd_weights, ...). */
    bf16Fallbacks: string[];
    /** Kernels that ran fp32 in bf16 mode by the bf16 policy, with the reason: 'dw_fwd: depthwise', 'conv_fwd: intensity < 24', 'conv_bwd_weights: winograd'. */
    bf16Fp32: string[];
    bf16Policy: Bf16Policy;
    impl: Record<string, string>;
    /**
     * Convolution calls (forward, backward data) by where their reordered filter came from, since the addon loaded:
     * made from the Float32Array and kept (converted: of those, by the addon's one-pass AVX512-BF16 conversion of
     * HWIO into oneDNN's AcdB16b32a2b instead of oneDNN's reorder), reused (the same filter tensor in the same
     * layout), derived from the same filter's copy in another layout (bf16 to bf16).
     */
    filterCopies: { made: number; converted: number; reused: number; derived: number };
  };
  clearCache(): void;
}

const pkgDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Where node-gyp puts the addon ($DPTRAIN_NATIVE_ADDON overrides, e.g. for tests of the missing-addon path). */
export const ADDON_PATH = addonPathFromEnv() ?? path.join(pkgDir, 'build', 'Release', 'dptrain_native.node');
const BUILD_SCRIPT = path.join(pkgDir, 'scripts', 'build-native.mjs');

export interface LoadAddonOptions {
  /** Build the addon with node-gyp when it is missing and oneDNN's headers exist. Default: true unless DPTRAIN_NATIVE_BUILD=0. */
  build?: boolean;
}

let cached: NativeAddon | undefined;

function dnnlLocation(): { include: string; lib: string } | null {
  const req = createRequire(import.meta.url);
  const mod = req(path.join(pkgDir, 'scripts', 'find-dnnl.cjs')) as { find(): { include: string; lib: string } | null };
  return mod.find();
}

/**
 * Loads the compiled addon, building it first (once, ~10 s) if it is missing and libdnnl-dev is installed.
 * Throws an Error saying what is missing otherwise.
 */
export function loadAddon(options: LoadAddonOptions = {}): NativeAddon {
  if (cached) return cached;
  const build = options.build ?? lazyBuildAllowed();
  if (!fs.existsSync(ADDON_PATH)) {
    if (!dnnlLocation()) {
      throw new Error('native backend unavailable: oneDNN is not installed (no dnnl.hpp / libdnnl.so; `apt-get install libdnnl-dev` or set DNNL_ROOT)');
    }
    if (!build) {
      throw new Error(`native backend unavailable: the addon is not built (${ADDON_PATH}); run \`npm run build:native\``);
    }
    const r = spawnSync(process.execPath, [BUILD_SCRIPT, '--quiet', '--strict'], { encoding: 'utf8' });
    if (r.status !== 0 || !fs.existsSync(ADDON_PATH)) {
      const tail = `${r.stderr ?? ''}`.trim().split('\n').slice(-6).join('\n');
      throw new Error(`native backend unavailable: building the addon failed (run \`npm run build:native\` to see why)\n${tail}`);
    }
  }
  // libgomp reads its settings when the addon loads it. Passive waiting: idle OpenMP threads sleep instead of
  // spinning between kernels (the JS in between would otherwise compete with spinning threads; measured 17 -> 25
  // img/s for the block5 step with 2 threads on a busy 2-core machine). Set OMP_WAIT_POLICY=active to override.
  process.env.OMP_WAIT_POLICY ??= 'passive';
  const req = createRequire(import.meta.url);
  try {
    cached = req(ADDON_PATH) as NativeAddon;
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    const hint = /libdnnl/.test(msg) ? ' (libdnnl is missing at run time: `apt-get install libdnnl-dev`)' : '';
    throw new Error(`native backend unavailable: cannot load ${ADDON_PATH}${hint}: ${msg}`);
  }
  return cached;
}
