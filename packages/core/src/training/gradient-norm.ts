import { DptrainError } from '../errors.js';
import { bucketSumOfSquares, DEFAULT_BUCKET_FLOATS, normFromBucketSums } from './buckets.js';

/**
 * Gradient norms: the L2 norm of a flat gradient, global-norm clipping of the averaged gradient (applied where
 * the optimizer runs, so it is the same on 1 or N workers), and the sanity bound on each worker's gradient.
 */

/**
 * L2 norm of `g`: per-bucket float64 sums of squares (`bucketSumOfSquares`), summed in bucket order
 * (deterministic, and the same whether the buckets are summed whole, one by one as they arrive, or by shards).
 */
export function l2Norm(g: Float32Array, bucketFloats: number = DEFAULT_BUCKET_FLOATS): number {
  return normFromBucketSums(bucketSumOfSquares(g, bucketFloats));
}

/** The factor global-norm clipping scales a gradient of this norm by (1: no clipping; `maxNorm` <= 0 or not finite: off). */
export function clipScale(norm: number, maxNorm: number): number {
  if (!(maxNorm > 0) || !Number.isFinite(maxNorm) || !(norm > maxNorm)) return 1;
  return maxNorm / norm;
}

/** g[start, end) *= scale in place, each element rounded once to float32 (scale 1: untouched). */
export function scaleRange(g: Float32Array, scale: number, start = 0, end = g.length): void {
  if (scale === 1) return;
  for (let i = start; i < end; i++) g[i] = g[i]! * scale;
}

/**
 * Global-norm clipping, in place: when the L2 norm of `g` (see l2Norm) exceeds `maxNorm`, `g` is scaled by
 * maxNorm / norm (each element rounded once to float32). Returns the norm before clipping. `maxNorm` <= 0 or not
 * finite: no-op.
 */
export function clipByGlobalNorm(g: Float32Array, maxNorm: number, bucketFloats: number = DEFAULT_BUCKET_FLOATS): number {
  const norm = l2Norm(g, bucketFloats);
  scaleRange(g, clipScale(norm, maxNorm));
  return norm;
}

export interface GradientNormGuardOptions {
  /** A gradient whose norm exceeds this many times the median of the recent accepted norms is refused. Default 100. */
  maxRatio?: number;
  /** A gradient whose norm exceeds this is refused, whatever the history. Default: none (Infinity). */
  maxNorm?: number;
  /** How many recent accepted norms the median is taken over. Default 32. */
  window?: number;
}

const GUARD_DEFAULTS: Required<GradientNormGuardOptions> = { maxRatio: 100, maxNorm: Infinity, window: 32 };

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 === 1 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}

/**
 * The sanity bound on the gradients workers return: a norm above `maxNorm`, or above `maxRatio` times the median
 * of the last accepted norms, is refused. Before any history exists (the first step), a part is judged against
 * the median of the other parts of the same step (`peers`), so one poisoned worker among honest ones is caught
 * on step 0 too.
 */
export class GradientNormGuard {
  private readonly opts: Required<GradientNormGuardOptions>;
  private readonly history: number[] = [];

  constructor(options: GradientNormGuardOptions = {}) {
    this.opts = { ...GUARD_DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) };
    if (!(this.opts.maxRatio > 1)) throw new DptrainError('E_CONFIG', `max gradient norm ratio must be above 1, got ${this.opts.maxRatio}`);
    if (!(this.opts.maxNorm > 0)) throw new DptrainError('E_CONFIG', `max gradient norm must be positive, got ${this.opts.maxNorm}`);
  }

  /** The norm this guard compares against: the median of the recent accepted norms, else of `peers`; undefined if neither. */
  reference(peers: readonly number[] = []): number | undefined {
    if (this.history.length > 0) return median(this.history);
    const finite = peers.filter((x) => Number.isFinite(x));
    return finite.length > 0 ? median(finite) : undefined;
  }

  /** Why a gradient of this norm is refused (undefined: accepted). `peers`: norms of the other parts of the step. */
  refusal(norm: number, peers: readonly number[] = []): string | undefined {
    if (!Number.isFinite(norm)) return `gradient norm is ${norm}`;
    if (norm > this.opts.maxNorm) return `gradient norm ${norm.toPrecision(4)} is above the limit of ${this.opts.maxNorm} (--max-grad-norm)`;
    const ref = this.reference(peers);
    if (ref !== undefined && ref > 0 && norm > this.opts.maxRatio * ref) {
      return `gradient norm ${norm.toPrecision(4)} is ${(norm / ref).toPrecision(3)} times the median ${ref.toPrecision(4)} of the ${this.history.length > 0 ? 'last accepted gradients' : "step's other gradients"} (limit ${this.opts.maxRatio}x, --max-grad-norm-ratio)`;
    }
    return undefined;
  }

  /** Records the norms of a completed step's accepted parts. */
  accept(norms: readonly number[]): void {
    for (const x of norms) if (Number.isFinite(x) && x > 0) this.history.push(x);
    if (this.history.length > this.opts.window) this.history.splice(0, this.history.length - this.opts.window);
  }
}
