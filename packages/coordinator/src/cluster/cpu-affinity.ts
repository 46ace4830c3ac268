import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * CPUs this process may run on (Linux: `Cpus_allowed_list` of /proc/self/status, e.g. "0-3,8"), or null where
 * that cannot be read.
 */
export function allowedCpus(status = '/proc/self/status'): number[] | null {
  let text: string;
  try {
    text = readFileSync(status, 'utf8');
  } catch {
    return null;
  }
  const line = /^Cpus_allowed_list:\s*(.+)$/m.exec(text)?.[1];
  return line ? parseCpuList(line) : null;
}

/** "0-3,8,10-11" -> [0, 1, 2, 3, 8, 10, 11]; throws on anything else. */
export function parseCpuList(list: string): number[] {
  const out: number[] = [];
  for (const part of list.trim().split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new Error(`cpu list '${list}': '${part}' is not N or N-M`);
    const lo = Number(m[1]);
    const hi = m[2] !== undefined ? Number(m[2]) : lo;
    for (let c = lo; c <= hi; c++) out.push(c);
  }
  return out;
}

/**
 * Splits `cpus` into `count` equal, disjoint sets (worker i gets the i-th), or null when there are fewer CPUs than
 * workers (pinning would then stack workers on shared cores).
 */
export function cpuSets(cpus: readonly number[], count: number): number[][] | null {
  if (count < 1 || cpus.length < count) return null;
  const per = Math.floor(cpus.length / count);
  return Array.from({ length: count }, (_, i) => cpus.slice(i * per, (i + 1) * per));
}

let tasksetFound: boolean | undefined;
/** Whether util-linux's `taskset` runs here. */
export function hasTaskset(): boolean {
  if (tasksetFound === undefined) {
    try {
      execFileSync('taskset', ['-V'], { stdio: 'ignore' });
      tasksetFound = true;
    } catch {
      tasksetFound = false;
    }
  }
  return tasksetFound;
}

/**
 * The command line that runs `argv` confined to `cpus` (`taskset -c`, which execs it in place: same pid, so signals
 * and exit codes are the program's own), or `argv` itself without a CPU set.
 */
export function pinnedArgv(argv: readonly string[], cpus: readonly number[] | undefined): string[] {
  return cpus ? ['taskset', '-c', cpus.join(','), ...argv] : [...argv];
}
