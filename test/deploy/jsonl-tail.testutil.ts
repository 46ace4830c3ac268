/** Follows a JSON-lines file that another process appends to (e.g. a run's `run.log.jsonl`). */
import { closeSync, openSync, readSync, existsSync } from 'node:fs';

/** Options of {@link JsonlTail.waitFor}. */
export interface WaitOptions {
  /** Give up after this many ms. Required. */
  timeoutMs: number;
  /** Poll interval in ms. Default 100. */
  pollMs?: number;
  /** Stop waiting early (e.g. the writer exited) when this returns a reason. Default: never. */
  abort?: () => string | undefined;
}

export class JsonlTail<T = Record<string, unknown>> {
  /** Every record read so far, in file order. */
  readonly records: T[] = [];
  private offset = 0;
  private partial = '';

  constructor(private readonly file: string) {}

  /** Reads whatever was appended since the last call. */
  poll(): T[] {
    if (!existsSync(this.file)) return [];
    const fd = openSync(this.file, 'r');
    const fresh: T[] = [];
    try {
      const buf = Buffer.alloc(1 << 16);
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, this.offset);
        if (n <= 0) break;
        this.offset += n;
        this.partial += buf.subarray(0, n).toString('utf8');
      }
    } finally {
      closeSync(fd);
    }
    const lines = this.partial.split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim() === '') continue;
      const rec = JSON.parse(line) as T;
      this.records.push(rec);
      fresh.push(rec);
    }
    return fresh;
  }

  /** Resolves with the first record (old or new) that matches; rejects on timeout or abort. */
  async waitFor(match: (rec: T) => boolean, options: WaitOptions): Promise<T> {
    const deadline = Date.now() + options.timeoutMs;
    this.poll();
    let seen = 0;
    for (;;) {
      for (; seen < this.records.length; seen++) if (match(this.records[seen]!)) return this.records[seen]!;
      const why = options.abort?.();
      if (why) throw new Error(`gave up waiting: ${why}`);
      if (Date.now() > deadline) throw new Error(`timed out after ${options.timeoutMs} ms waiting in ${this.file}`);
      await new Promise((r) => setTimeout(r, options.pollMs ?? 100));
      this.poll();
    }
  }
}
