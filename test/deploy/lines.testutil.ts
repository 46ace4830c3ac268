/** Collects a child's output line by line and lets a test wait for a line that matches. */
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';

type Waiter = { match: (line: string) => boolean; resolve: (line: string) => void; reject: (err: Error) => void; timer: NodeJS.Timeout };

export class LineReader {
  /** Every line seen so far. */
  readonly lines: string[] = [];
  private cursor = 0;
  private waiters: Waiter[] = [];
  private ended = false;

  /** @param stream the child's stdout or stderr. @param onLine optional tap (e.g. echo for debugging). */
  constructor(stream: Readable, onLine?: (line: string) => void) {
    const rl = createInterface({ input: stream });
    rl.on('line', (line) => {
      this.lines.push(line);
      onLine?.(line);
      this.flush();
    });
    rl.on('close', () => {
      this.ended = true;
      for (const w of this.waiters.splice(0)) {
        clearTimeout(w.timer);
        w.reject(new Error('stream ended before a matching line'));
      }
    });
  }

  private flush(): void {
    while (this.waiters.length > 0 && this.cursor < this.lines.length) {
      const line = this.lines[this.cursor++]!;
      const i = this.waiters.findIndex((w) => w.match(line));
      if (i >= 0) {
        const [w] = this.waiters.splice(i, 1);
        clearTimeout(w!.timer);
        w!.resolve(line);
      }
    }
  }

  /** Resolves with the next line (after the last one consumed) that matches; rejects after `timeoutMs`. */
  waitFor(match: (line: string) => boolean, timeoutMs: number): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      if (this.ended && this.cursor >= this.lines.length) {
        reject(new Error('stream ended before a matching line'));
        return;
      }
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.timer !== timer);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for a line`));
      }, timeoutMs);
      this.waiters.push({ match, resolve, reject, timer });
      this.flush();
    });
  }
}
