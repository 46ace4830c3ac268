import { bucketRanges, DptrainError, mergeGradientTree, type BucketRange } from '@dptrain/core';

/** Where an agent's merged gradient goes, bucket by bucket, as each is merged (its upstream link). */
export interface GradientStream {
  /** Floats per bucket (the step message's `bucketFloats`: core's bucketRanges). */
  bucketFloats: number;
  /** Bucket [offset, offset + values.length) of the merged mean of `total` floats, in order of offset. */
  emit(offset: number, total: number, values: Float32Array): void;
}

/** One request's part of a streamed step: samples [start, end) of the batch, and the buckets of it that are in. */
export interface StreamedPart {
  /** Bucket [offset, offset + values.length) of this part's mean gradient. */
  add(offset: number, values: Float32Array): void;
  /** The request failed (lost, late, bad reply): its buckets leave the merge; its samples are redone by others. */
  drop(): void;
  /** Its gradient was refused (the norm bound): E_GRADIENT_NORM when a bucket that holds it was already sent. */
  refuse(why: string): void;
}

interface Part {
  start: number;
  end: number;
  buckets: (Float32Array | undefined)[];
  alive: boolean;
  /** Merged into a bucket that was sent. */
  sent: boolean;
}

/**
 * An agent's local merge, bucket by bucket: bucket k of the step's merged mean is merged, along the micro-batch tree
 * (`mergeGradientTree` over the parts' bucket k: elementwise, so the bits of bucket k of the whole merge), and sent
 * on as soon as the live parts tile the batch and each has its bucket k; buckets go out in order, each once. A part
 * that is lost after its bucket k went out changes nothing there (its redo is a tree node too: the same bits), so a
 * bucket is never sent incomplete nor twice.
 */
export class StreamedMerge {
  private readonly ranges: BucketRange[];
  private readonly parts: Part[] = [];
  private next = 0;

  constructor(
    /** Samples in the step (the parts tile [0, total)). */
    private readonly total: number,
    private readonly microBatch: number,
    /** Floats of the trainable vector. */
    private readonly size: number,
    private readonly stream: GradientStream,
  ) {
    this.ranges = bucketRanges(size, stream.bucketFloats);
  }

  /** True once every bucket was sent. */
  get done(): boolean {
    return this.next === this.ranges.length;
  }

  /** A request for the samples [start, end) begins. */
  part(start: number, end: number): StreamedPart {
    const p: Part = { start, end, buckets: [], alive: true, sent: false };
    this.parts.push(p);
    return {
      add: (offset, values) => {
        const k = this.ranges.findIndex((r) => r.start === offset);
        if (k < 0 || this.ranges[k]!.end - offset !== values.length)
          throw new DptrainError(
            'E_GRADIENT_SHAPE',
            `a gradient bucket [${offset}, ${offset + values.length}) is not a bucket of ${this.stream.bucketFloats} floats`,
          );
        p.buckets[k] = values;
        this.flush();
      },
      drop: () => {
        p.alive = false;
        this.flush(); // its redo may be in already
      },
      refuse: (why) => {
        p.alive = false;
        if (p.sent)
          throw new DptrainError(
            'E_GRADIENT_NORM',
            `a local gradient was refused after its first buckets were sent on (${why}); the step fails here and is redone`,
          );
      },
    };
  }

  /** Sends every bucket that can be merged now, in order. */
  private flush(): void {
    while (this.next < this.ranges.length) {
      const k = this.next;
      const live = this.parts.filter((p) => p.alive).sort((a, b) => a.start - b.start);
      let at = 0;
      for (const p of live) {
        if (p.start !== at || !p.buckets[k]) return;
        at = p.end;
      }
      if (at !== this.total) return;
      const merged = mergeGradientTree(
        live.map((p) => ({ gradients: p.buckets[k]!, loss: 0, count: p.end - p.start, correct: 0, start: p.start, end: p.end })),
        this.total,
        this.microBatch,
      );
      for (const p of live) {
        p.sent = true;
        p.buckets[k] = undefined;
      }
      this.next++;
      this.stream.emit(this.ranges[k]!.start, this.size, merged.gradients);
    }
  }
}
