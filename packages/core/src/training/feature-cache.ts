import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { float16ToFloat32, float32ToFloat16 } from '../protocol/fp16.js';
import { bfloat16ToFloat32, float32ToBfloat16 } from '../util/bf16.js';

export interface FeatureCacheOptions {
  /**
   * What the features depend on besides the sample (base hash, boundary layer, preprocessing, input size,
   * data set…); hashed into the disk folder so stale files are never read. Required.
   */
  namespace: string;
  /** Folder where entries beyond the memory bound are spilled. Default: none (evicted entries are dropped and recomputed). */
  dir?: string;
  /** Bytes of features kept in memory. Default 512 MiB. */
  maxMemoryBytes?: number;
  /** Store features as fp16 (in memory and on disk). Default true. */
  fp16?: boolean;
  /**
   * Store features as bf16 instead (in memory and on disk; takes precedence over `fp16`): what bf16 kernels multiply,
   * so a bf16 run rounds them once. Default false.
   */
  bf16?: boolean;
  /**
   * Write every entry to `dir` as soon as it is stored, so other processes sharing the folder (local workers of
   * one machine, or workers on one shared mount) read it instead of recomputing it. Default false (spill only).
   */
  writeThrough?: boolean;
}

export interface FeatureCacheStats {
  hits: number;
  misses: number;
  /** Entries written to disk. */
  spilled: number;
  /** Entries read back from disk. */
  diskHits: number;
  memoryBytes: number;
  memoryEntries: number;
}

type Stored = Float32Array | Uint16Array;

/**
 * Per-sample feature cache: an LRU in memory up to a byte bound, spilling to per-entry files in `dir`.
 * Values come back exactly as stored (fp16-rounded when `fp16`), whether from memory or disk, so results do not
 * depend on what was evicted.
 */
export class FeatureCache {
  /** Stored as fp16 (false when `bf16`). */
  readonly fp16: boolean;
  readonly bf16: boolean;
  readonly maxMemoryBytes: number;
  /** Folder of this namespace's files (undefined without `dir`). */
  readonly folder: string | undefined;
  private readonly writeThrough: boolean;
  private readonly mem = new Map<string, Stored>();
  private readonly onDisk = new Set<string>();
  private bytes = 0;
  private readonly counters = { hits: 0, misses: 0, spilled: 0, diskHits: 0 };

  constructor(options: FeatureCacheOptions) {
    this.bf16 = options.bf16 ?? false;
    this.fp16 = !this.bf16 && (options.fp16 ?? true);
    this.writeThrough = options.writeThrough ?? false;
    this.maxMemoryBytes = options.maxMemoryBytes ?? 512 * 1024 * 1024;
    const ns = createHash('sha256').update(options.namespace).digest('hex').slice(0, 20);
    this.folder = options.dir === undefined ? undefined : path.join(options.dir, ns);
    if (this.folder) {
      fs.mkdirSync(this.folder, { recursive: true });
      fs.writeFileSync(path.join(this.folder, 'namespace.txt'), options.namespace);
    }
  }

  /** The stored form of `values` read back as float32 (fp16 or bf16 rounding applied when stored so). */
  roundTrip(values: Float32Array): Float32Array {
    const h = this.half(values);
    return h === undefined ? values : this.decode(h);
  }

  private file(key: string): string {
    return path.join(this.folder!, `${key.replace(/[^A-Za-z0-9_.-]/g, '_')}.${this.bf16 ? 'bf16' : this.fp16 ? 'f16' : 'f32'}`);
  }

  /** The 16-bit encoding of values, or undefined when stored as fp32. */
  private half(values: Float32Array): Uint16Array | undefined {
    if (this.bf16) return float32ToBfloat16(values);
    if (this.fp16) return float32ToFloat16(values);
    return undefined;
  }

  private encode(values: Float32Array): Stored {
    return this.half(values) ?? new Float32Array(values);
  }

  private decode(v: Stored): Float32Array {
    if (!(v instanceof Uint16Array)) return v;
    return this.bf16 ? bfloat16ToFloat32(v) : float16ToFloat32(v);
  }

  /** The features of `key`, or undefined. */
  get(key: string): Float32Array | undefined {
    const m = this.mem.get(key);
    if (m) {
      // LRU: move to the back.
      this.mem.delete(key);
      this.mem.set(key, m);
      this.counters.hits++;
      return this.decode(m);
    }
    if (this.folder) {
      const f = this.file(key);
      if (this.onDisk.has(key) || fs.existsSync(f)) {
        const buf = fs.readFileSync(f);
        const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
        const v: Stored = this.fp16 || this.bf16 ? new Uint16Array(ab) : new Float32Array(ab);
        this.onDisk.add(key);
        this.counters.hits++;
        this.counters.diskHits++;
        this.remember(key, v);
        return this.decode(v);
      }
    }
    this.counters.misses++;
    return undefined;
  }

  /** Store the features of `key` (copied). Returns what a later `get` will return. */
  put(key: string, values: Float32Array): Float32Array {
    const v: Stored = this.encode(values);
    if (this.writeThrough && this.folder && !this.onDisk.has(key)) this.writeFile(key, v);
    this.remember(key, v);
    return this.decode(v);
  }

  private remember(key: string, v: Stored): void {
    const old = this.mem.get(key);
    if (old) {
      this.bytes -= old.byteLength;
      this.mem.delete(key);
    }
    this.mem.set(key, v);
    this.bytes += v.byteLength;
    while (this.bytes > this.maxMemoryBytes && this.mem.size > 0) {
      const [k, e] = this.mem.entries().next().value as [string, Stored];
      this.mem.delete(k);
      this.bytes -= e.byteLength;
      if (this.folder && !this.onDisk.has(k)) {
        this.writeFile(k, e);
        this.counters.spilled++;
      }
    }
  }

  /** Write then rename: another process sharing the folder sees either no file or a whole one. */
  private writeFile(key: string, v: Stored): void {
    const f = this.file(key);
    const tmp = `${f}.${process.pid}.${this.tmpSeq++}.tmp`;
    fs.writeFileSync(tmp, new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
    fs.renameSync(tmp, f);
    this.onDisk.add(key);
  }

  private tmpSeq = 0;

  get stats(): FeatureCacheStats {
    return { ...this.counters, memoryBytes: this.bytes, memoryEntries: this.mem.size };
  }

  /** Drop the memory part (files stay). */
  clearMemory(): void {
    this.mem.clear();
    this.bytes = 0;
  }
}

/** Cache key of one sample's features at a boundary layer for one view ('plain' or 'v<k>'). */
export function featureKey(boundary: string, sample: { split: string; index: number }, view: string): string {
  return `${boundary}.${view}.${sample.split}-${sample.index}`;
}
