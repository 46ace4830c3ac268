import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** The A100 (8.0), H100 (9.0), B200 (10.0) of the acceptance test, as nvidia-smi --format=csv,noheader,nounits prints them. */
export const THREE_GPUS = [
  'NVIDIA A100-SXM4-80GB, 8.0, 535.104.05, 81920',
  'NVIDIA H100 80GB HBM3, 9.0, 550.54.15, 81559',
  'NVIDIA B200, 10.0, 570.86.15, 183359',
];

/**
 * A folder holding a stand-in `nvidia-smi` (shell builtins only, so PATH may hold nothing else) that prints `lines` for --query-gpu and `apps` (pids) for
 * --query-compute-apps; with `oldDriver`, it refuses the compute_cap field as drivers before 510 do. Put the folder alone on PATH: the real one, if any, is then out of reach.
 */
export function fakeNvidiaSmiDir(lines: string[], options: { apps?: number[]; oldDriver?: boolean } = {}): string {
  const apps = options.apps ?? [];
  const dir = mkdtempSync(path.join(tmpdir(), 'fake-smi-'));
  const file = path.join(dir, 'nvidia-smi');
  writeFileSync(
    file,
    [
      '#!/bin/sh',
      'case "$*" in',
      ...(options.oldDriver ? ['  *compute_cap*)', `    echo 'Field "compute_cap" is not a valid field to query.'`, '    exit 2', '  ;;'] : []),
      '  *query-compute-apps*)',
      ...apps.map((p) => `    echo '${p}'`),
      '  ;;',
      '  *)',
      ...lines.map((l) => `    echo '${l}'`),
      '  ;;',
      'esac',
      '',
    ].join('\n'),
  );
  chmodSync(file, 0o755);
  return dir;
}
