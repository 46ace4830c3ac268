// Runs N benchmark processes at once and collects their `{"result": ...}` lines.
// Each process warms up, prints `{"ready": true}` and waits; once all are ready they get "go" together, so the timed
// windows overlap (two workers really share the machine).
import { spawn } from 'node:child_process';
import * as readline from 'node:readline';

export interface ProcSpec {
  command: string;
  args: string[];
  env?: Record<string, string>;
}

export async function runParallel<R>(specs: ProcSpec[], timeoutMs = 1_800_000): Promise<R[]> {
  const procs = specs.map((s) => spawn(s.command, [...s.args, '--barrier'], { env: { ...process.env, ...s.env }, stdio: ['pipe', 'pipe', 'pipe'] }));
  const stderr: string[] = procs.map(() => '');
  let ready = 0;
  const results = await new Promise<R[]>((resolve, reject) => {
    const out: (R | undefined)[] = procs.map(() => undefined);
    let exited = 0;
    const timer = setTimeout(() => {
      procs.forEach((p) => p.kill('SIGKILL'));
      reject(new Error(`benchmark processes timed out after ${timeoutMs / 1000} s`));
    }, timeoutMs);
    procs.forEach((p, i) => {
      p.stderr.on('data', (d: Buffer) => {
        stderr[i] = (stderr[i]! + d.toString()).slice(-4000);
      });
      readline.createInterface({ input: p.stdout }).on('line', (line) => {
        let msg: { ready?: boolean; result?: R };
        try {
          msg = JSON.parse(line) as typeof msg;
        } catch {
          return;
        }
        if (msg.ready && ++ready === procs.length) procs.forEach((q) => q.stdin.write('go\n'));
        if (msg.result) out[i] = msg.result;
      });
      p.on('exit', (code) => {
        if (code !== 0 || out[i] === undefined) {
          clearTimeout(timer);
          procs.forEach((q) => q.kill('SIGKILL'));
          reject(new Error(`${specs[i]!.command} ${specs[i]!.args.join(' ')} exited with ${code}:\n${stderr[i]!.trim().split('\n').slice(-8).join('\n')}`));
          return;
        }
        if (++exited === procs.length) {
          clearTimeout(timer);
          resolve(out as R[]);
        }
      });
    });
  });
  return results;
}
