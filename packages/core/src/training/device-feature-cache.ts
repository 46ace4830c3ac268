/**
 * Frozen features kept as tensors in the backend's memory (on a GPU: device memory), up to a byte bound. What does
 * not fit goes to the host FeatureCache instead (the caller falls back to it), so a data set larger than the GPU
 * still trains. Entries are float32 (the host cache may store fp16).
 */
import * as tf from '@tensorflow/tfjs';

export class DeviceFeatureCache {
  private readonly rows = new Map<string, tf.Tensor>();
  private used = 0;
  /** Entries refused because the bound was reached. */
  refused = 0;

  constructor(readonly maxBytes: number) {}

  get bytes(): number {
    return this.used;
  }

  get size(): number {
    return this.rows.size;
  }

  get(key: string): tf.Tensor | undefined {
    return this.rows.get(key);
  }

  /** Keeps `row` (taking ownership: it is kept, not copied) when it fits; false (row untouched) when it does not. */
  put(key: string, row: tf.Tensor): boolean {
    const bytes = row.size * 4;
    const old = this.rows.get(key);
    if (old === row) return true;
    if (this.used - (old ? old.size * 4 : 0) + bytes > this.maxBytes) {
      this.refused++;
      return false;
    }
    if (old) {
      this.used -= old.size * 4;
      old.dispose();
    }
    this.rows.set(key, tf.keep(row));
    this.used += bytes;
    return true;
  }

  clear(): void {
    for (const t of this.rows.values()) t.dispose();
    this.rows.clear();
    this.used = 0;
  }
}
