import { readdirSync, readFileSync } from 'node:fs';

/** Pids of live processes whose command line or environment mentions `marker` (e.g. a test's own temp folder). */
export function processesMentioning(marker: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    for (const f of ['cmdline', 'environ']) {
      try {
        if (readFileSync(`/proc/${entry}/${f}`).toString('latin1').includes(marker)) {
          found.push(Number(entry));
          break;
        }
      } catch {
        // gone, or not ours to read
      }
    }
  }
  return found;
}
