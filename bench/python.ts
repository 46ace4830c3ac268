// Finds a python3 that can `import torch` ($DPTRAIN_PYTHON, python3 on PATH, then /usr/bin/python3).
import { spawnSync } from 'node:child_process';

export function findTorchPython(): { python: string; version: string } | null {
  const cands = [process.env.DPTRAIN_PYTHON, 'python3', '/usr/bin/python3'].filter((c): c is string => !!c);
  for (const python of cands) {
    const r = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', timeout: 60_000 });
    if (r.status === 0) return { python, version: r.stdout.trim() };
  }
  return null;
}
