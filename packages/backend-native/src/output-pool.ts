// Recycles the big output arrays of the native kernels. A training step allocates the same arrays every time
// (VGG16 block5 from cached features: ~60 MB, from images: ~1 GB); as fresh ArrayBuffers they count as V8 external
// memory, which starts a full garbage collection about once a step, and its helper threads take ~0.2 of a core
// from the other worker process on the machine. Arrays come back here when tfjs disposes the last tensor holding
// them, and only when nothing else can still see them.
import type { DataType } from '@tensorflow/tfjs';

/** Options of the native backend's output array pool. */
export interface OutputPoolOptions {
  /** Most bytes of free arrays kept for reuse; 0 turns recycling off. Default 512 MiB (registerNativeBackend applies $DPTRAIN_NATIVE_POOL_MB). */
  maxBytes?: number;
  /** Arrays shorter than this (floats) are neither pooled nor tracked: V8 allocates them cheaply. Default: 4096. */
  minLength?: number;
}

/** Counters of the pool since it was created. */
export interface OutputPoolStats {
  /** Arrays handed out new. */
  allocated: number;
  /** Arrays handed out from the free lists. */
  reused: number;
  /** Disposed arrays taken back into the free lists. */
  recycled: number;
  /** Disposed arrays left to the garbage collector because they were read out, viewed or shared. */
  exposed: number;
  /** Bytes held in the free lists now. */
  freeBytes: number;
}

/** The parts of tfjs's MathBackendCPU the pool hooks into. */
export interface PooledBackend {
  data: { has(dataId: object): boolean; get(dataId: object): { values?: unknown } };
  write(values: unknown, shape: number[], dtype: DataType): object;
  move(dataId: object, values: unknown, shape: number[], dtype: DataType, refCount: number): void;
  readSync(dataId: object): unknown;
  disposeData(dataId: object, force?: boolean): boolean;
  /**
   * Added by the pool: copies a float32 tensor's values into `dst` at `offset` without handing its storage out (a
   * dataSync() would keep the array from being recycled). Returns false when `dataId` is not float32 data here.
   */
  readInto?(dataId: object, dst: Float32Array, offset: number): boolean;
}

interface Owned {
  values: Float32Array;
  /** Seen by someone besides its tensor: read out, viewed by another tensor, or written twice. Never recycled. */
  exposed: boolean;
}

const DEFAULT_MAX_BYTES = 512 * 2 ** 20;

export class OutputPool {
  private maxFreeBytes: number;
  readonly minLength: number;
  private readonly free = new Map<number, Float32Array[]>();
  /** Arrays handed out by take() and not yet stored in a tensor. */
  private readonly fresh = new WeakSet<Float32Array>();
  private readonly owners = new Map<object, Owned>();
  private readonly byBuffer = new WeakMap<ArrayBufferLike, Owned>();
  private stats: OutputPoolStats = { allocated: 0, reused: 0, recycled: 0, exposed: 0, freeBytes: 0 };

  constructor(options: OutputPoolOptions = {}) {
    this.maxFreeBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    this.minLength = options.minLength ?? 4096;
  }

  /** Most bytes of free arrays kept for reuse (0: recycling off). */
  get maxBytes(): number {
    return this.maxFreeBytes;
  }

  /** Changes maxBytes; a lower bound drops the free arrays now (they go to the garbage collector). */
  setMaxBytes(bytes: number): void {
    if (bytes < this.stats.freeBytes) {
      this.free.clear();
      this.stats.freeBytes = 0;
    }
    this.maxFreeBytes = bytes;
  }

  /** An array of n floats, NOT zero-filled (a recycled one holds old values): the kernel writes every element. */
  take(n: number): Float32Array {
    if (n < this.minLength) return new Float32Array(n);
    const list = this.free.get(n);
    const reused = list?.pop();
    if (reused) {
      if (list!.length === 0) this.free.delete(n);
      this.stats.freeBytes -= reused.byteLength;
      this.stats.reused++;
      this.fresh.add(reused);
      return reused;
    }
    const b = Buffer.allocUnsafeSlow(n * 4); // its own ArrayBuffer (offset 0, exact length)
    const out = new Float32Array(b.buffer, b.byteOffset, n);
    this.stats.allocated++;
    if (this.maxBytes > 0) this.fresh.add(out);
    return out;
  }

  getStats(): OutputPoolStats {
    return { ...this.stats };
  }

  /** Hooks the pool into a cpu backend instance: its writes, moves, reads and disposals. */
  attach(backend: PooledBackend): void {
    const write = backend.write.bind(backend);
    const move = backend.move.bind(backend);
    const readSync = backend.readSync.bind(backend);
    const disposeData = backend.disposeData.bind(backend);
    backend.write = (values, shape, dtype) => {
      const dataId = write(values, shape, dtype);
      this.noteStored(dataId, values);
      return dataId;
    };
    backend.move = (dataId, values, shape, dtype, refCount) => {
      move(dataId, values, shape, dtype, refCount);
      this.noteStored(dataId, values);
    };
    backend.readSync = (dataId) => {
      const o = this.owners.get(dataId);
      if (o) o.exposed = true; // the caller may keep the array: it must never change under them
      return readSync(dataId);
    };
    backend.disposeData = (dataId, force) => {
      const done = disposeData(dataId, force);
      const o = this.owners.get(dataId);
      if (o && !backend.data.has(dataId)) {
        this.owners.delete(dataId);
        this.release(o);
      }
      return done;
    };
    backend.readInto = (dataId, dst, offset) => {
      if (!backend.data.has(dataId)) return false;
      const v = backend.data.get(dataId).values;
      if (!(v instanceof Float32Array)) return false;
      dst.set(v, offset);
      return true;
    };
  }

  private noteStored(dataId: object, values: unknown): void {
    if (!ArrayBuffer.isView(values)) return;
    const seen = this.byBuffer.get(values.buffer);
    if (seen) {
      seen.exposed = true; // a second tensor sees this memory (a view, or the same array again)
      return;
    }
    if (values instanceof Float32Array && this.fresh.has(values)) {
      this.fresh.delete(values);
      const o: Owned = { values, exposed: false };
      this.owners.set(dataId, o);
      this.byBuffer.set(values.buffer, o);
    }
  }

  private release(o: Owned): void {
    this.byBuffer.delete(o.values.buffer);
    if (o.exposed) {
      this.stats.exposed++;
      return;
    }
    const bytes = o.values.byteLength;
    if (bytes > this.maxBytes) return;
    // over the limit: drop free arrays of other sizes first (oldest sizes first), then this one if still over
    for (const [n, list] of this.free) {
      while (this.stats.freeBytes + bytes > this.maxBytes && list.length > 0) {
        this.stats.freeBytes -= list.pop()!.byteLength;
      }
      if (list.length === 0) this.free.delete(n);
      if (this.stats.freeBytes + bytes <= this.maxBytes) break;
    }
    const list = this.free.get(o.values.length) ?? [];
    list.push(o.values);
    this.free.set(o.values.length, list);
    this.stats.freeBytes += bytes;
    this.stats.recycled++;
  }
}

/** The pool of this process's native backend. */
export const outputPool = new OutputPool();

export function outputPoolStats(): OutputPoolStats {
  return outputPool.getStats();
}
