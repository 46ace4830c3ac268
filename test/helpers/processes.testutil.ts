import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** Processes (pid and command line) whose command line contains `marker`, read from /proc (Linux). */
export function processesWith(marker: string): { pid: number; cmdline: string }[] {
  const out: { pid: number; cmdline: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ');
    } catch {
      continue; // gone meanwhile
    }
    if (cmdline.includes(marker)) out.push({ pid: Number(name), cmdline });
  }
  return out;
}

/** Waits until no process has `marker` in its command line; returns those left after `timeoutMs`. */
export async function waitNoProcessWith(marker: string, timeoutMs: number): Promise<{ pid: number; cmdline: string }[]> {
  const t0 = Date.now();
  for (;;) {
    const left = processesWith(marker);
    if (left.length === 0 || Date.now() - t0 > timeoutMs) return left;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** SIGKILLs every process with `marker` in its command line (test clean-up after a failure). */
export function killProcessesWith(marker: string): void {
  for (const p of processesWith(marker)) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/**
 * Pids of live processes whose command line, environment or working directory mentions `marker` (a test's own
 * temp folder): what must be empty once a test that started processes is done.
 */
export function processesMentioning(marker: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const text = ['cmdline', 'environ'].map((f) => readFileSync(`/proc/${entry}/${f}`).toString('latin1')).join('\0');
      if (text.includes(marker) || readlinkSync(`/proc/${entry}/cwd`).startsWith(marker)) found.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

/** True when `pid`'s parent is `parent` (from /proc/PID/stat). */
export function isChildOf(pid: number, parent: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent;
  } catch {
    return false;
  }
}
