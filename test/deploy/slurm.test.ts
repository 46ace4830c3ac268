/**
 * deploy/slurm: the sbatch script is syntax-checked (bash -n, shellcheck when installed), its #SBATCH lines are
 * checked, and it is run for real under bash against stand-ins for `scontrol`, `srun` and `dptrain` that record
 * what would have been started: one coordinator on the first node and one agent on every node (which starts one
 * worker per GPU of its node), every command line valid for the real dptrain CLI.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkDptrainArgs } from './cli-check.testutil.js';

const SCRIPT = join(import.meta.dirname, '..', '..', 'deploy', 'slurm', 'dptrain.sbatch');
const TEXT = readFileSync(SCRIPT, 'utf8');

function has(cmd: string): boolean {
  return spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
}

/** sbatch options the script may set, and the value each must have where it matters. */
const SBATCH_OPTIONS = new Set([
  'job-name',
  'nodes',
  'ntasks-per-node',
  'gpus-per-node',
  'cpus-per-task',
  'mem-per-gpu',
  'time',
  'output',
  'partition',
  'account',
  'exclusive',
]);

type Call = { argv: string[]; node: string; procid?: string; localid?: string; cuda: string | null; token: string | null };

/** Writes the stand-ins into `dir`: `scontrol show hostnames`, an `srun` that starts its command once per task, a recording `dptrain`. */
function writeStandIns(dir: string, nodes: string[], gpusPerNode: number, cudaMode: 'per-node' | 'unset'): void {
  const log = join(dir, 'calls.jsonl');
  const write = (name: string, body: string): void => {
    writeFileSync(join(dir, name), body);
    chmodSync(join(dir, name), 0o755);
  };
  // Host name of the node a task runs on (the stand-in srun says which).
  write('hostname', `#!/usr/bin/env bash\necho "\${SLURMD_NODENAME:-${nodes[0]}}"\n`);
  write(
    'scontrol',
    `#!/usr/bin/env bash\n[ "$1 $2" = "show hostnames" ] || { echo "stand-in scontrol: unexpected $*" >&2; exit 1; }\nprintf '%s\\n' ${nodes.join(' ')}\n`,
  );
  // srun: read options up to the command; run the command once per task with Slurm's per-task variables.
  write(
    'srun',
    `#!/usr/bin/env bash
ntasks=""
while [ $# -gt 0 ]; do
  case "$1" in
    --ntasks=*) ntasks=\${1#--ntasks=}; shift ;;
    -n) ntasks=$2; shift 2 ;;
    --ntasks-per-node=1|--kill-on-bad-exit=*|--export=ALL) shift ;;
    -*) echo "stand-in srun: unexpected option $1" >&2; exit 1 ;;
    *) break ;;
  esac
done
[ -n "$ntasks" ] || { echo "stand-in srun: no --ntasks" >&2; exit 1; }
nodes=(${nodes.join(' ')})
pids=()
for ((i = 0; i < ntasks; i++)); do
  (
    export SLURM_PROCID=$i SLURM_LOCALID=0 SLURM_NODEID=$i SLURMD_NODENAME=\${nodes[$i]}
    case ${cudaMode} in
      per-node) export CUDA_VISIBLE_DEVICES=${Array.from({ length: gpusPerNode }, (_, g) => g).join(',')} ;;
      unset) unset CUDA_VISIBLE_DEVICES ;;
    esac
    exec "$@"
  ) &
  pids+=($!)
done
for p in "\${pids[@]}"; do wait "$p"; done
`,
  );
  write(
    'dptrain-standin',
    `#!/usr/bin/env node
const fs = require('node:fs');
const argv = process.argv.slice(2);
const e = process.env;
fs.appendFileSync(${JSON.stringify(log)}, JSON.stringify({ argv, node: e.SLURMD_NODENAME || '${nodes[0]}', procid: e.SLURM_PROCID, localid: e.SLURM_LOCALID, cuda: e.CUDA_VISIBLE_DEVICES ?? null, token: e.DPTRAIN_TOKEN ?? null }) + '\\n');
if (argv[0] === 'coordinator') setTimeout(() => {}, 300);
`,
  );
}

function runScript(
  cudaMode: 'per-node' | 'unset',
  extraEnv: Record<string, string> = {},
): { calls: Call[]; stdout: string; status: number | null; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'dptrain-slurm-'));
  try {
    const nodes = ['gpu01', 'gpu02'];
    writeStandIns(dir, nodes, 4, cudaMode);
    const res = spawnSync('bash', [SCRIPT, '--epochs', '3', '--batch-size', '64'], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 30_000,
      env: {
        PATH: `${dir}:${process.env.PATH}`,
        HOME: dir,
        SLURM_JOB_NODELIST: 'gpu[01-02]',
        SLURM_JOB_ID: '4242',
        SLURM_NNODES: '2',
        DPTRAIN_DATA: '/shared/scenes',
        DPTRAIN: join(dir, 'dptrain-standin'),
        ...extraEnv,
      },
    });
    let calls: Call[] = [];
    try {
      calls = readFileSync(join(dir, 'calls.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Call);
    } catch {
      /* nothing started */
    }
    return { calls, stdout: res.stdout, stderr: res.stderr, status: res.status };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('deploy/slurm/dptrain.sbatch', () => {
  it('is valid bash (bash -n) and, where shellcheck is installed, lint-clean', () => {
    execFileSync('bash', ['-n', SCRIPT]);
    if (has('shellcheck')) execFileSync('shellcheck', ['-s', 'bash', SCRIPT]);
    else console.warn('[slurm] shellcheck not installed: lint skipped (bash -n done)');
  });

  it('asks Slurm for one task per node and the GPUs of each node', () => {
    const directives = [...TEXT.matchAll(/^#SBATCH\s+--([a-z-]+)(?:=(\S+))?/gm)].map((m) => ({ name: m[1]!, value: m[2] }));
    expect(directives.length).toBeGreaterThan(3);
    for (const d of directives) expect(SBATCH_OPTIONS.has(d.name), `#SBATCH --${d.name}`).toBe(true);
    expect(Number(directives.find((d) => d.name === 'gpus-per-node')?.value)).toBeGreaterThanOrEqual(1);
    expect(directives.find((d) => d.name === 'ntasks-per-node')?.value).toBe('1');
    // Directives must come before the first command, or sbatch ignores them.
    const firstCommand = TEXT.split('\n').findIndex((l) => l.trim() !== '' && !l.startsWith('#'));
    const lastDirective = TEXT.split('\n')
      .map((l) => l.startsWith('#SBATCH'))
      .lastIndexOf(true);
    expect(lastDirective).toBeLessThan(firstCommand);
  });

  it('lets DPTRAIN_MIN_WORKERS override the number of agents training needs', () => {
    const res = runScript('per-node', { DPTRAIN_MIN_WORKERS: '2' });
    const coord = res.calls.find((c) => c.argv[0] === 'coordinator')!;
    expect(coord.argv[coord.argv.indexOf('--min-workers') + 1]).toBe('2');
  });

  it('refuses to run without a data directory', () => {
    const res = runScript('per-node', { DPTRAIN_DATA: '' });
    expect(res.status).not.toBe(0);
    expect(res.stderr).toMatch(/DPTRAIN_DATA/);
    expect(res.calls).toEqual([]);
  });

  describe.each(['per-node', 'unset'] as const)('on 2 nodes x 4 GPUs, CUDA_VISIBLE_DEVICES from Slurm: %s', (cudaMode) => {
    let res: ReturnType<typeof runScript>;
    beforeAll(() => {
      res = runScript(cudaMode);
    });

    it('starts one coordinator on the first node, without a GPU, training with at least half of the 2 agents', () => {
      expect(res.status, res.stderr).toBe(0);
      const coords = res.calls.filter((c) => c.argv[0] === 'coordinator');
      expect(coords).toHaveLength(1);
      expect(coords[0]!.node).toBe('gpu01');
      expect(coords[0]!.procid).toBeUndefined(); // the batch step, not an srun task
      expect(coords[0]!.cuda).toBe('');
      const a = coords[0]!.argv;
      expect(a[a.indexOf('--min-workers') + 1]).toBe('1');
      // a requeued job (same id, same run directory) continues from the checkpoint
      expect(a[a.indexOf('--resume') + 1]).toMatch(/runs\/dptrain-\d+$/);
      expect(a).not.toContain('--out');
      expect(a.slice(-4)).toEqual(['--epochs', '3', '--batch-size', '64']);
    });

    it('starts one agent per node, with the GPUs Slurm gave the node (one worker each), all with the same token', () => {
      const agents = res.calls.filter((c) => c.argv[0] === 'worker');
      expect(agents).toHaveLength(2);
      expect(new Set(agents.map((w) => w.node))).toEqual(new Set(['gpu01', 'gpu02']));
      for (const w of agents) {
        // the node's GPUs, not one: the agent hands one to each of its workers
        expect(w.cuda).toBe(cudaMode === 'per-node' ? '0,1,2,3' : null);
        expect(w.argv[w.argv.indexOf('--nproc-per-node') + 1]).toBe('gpu');
        expect(w.argv[w.argv.indexOf('--connect') + 1]).toBe('ws://gpu01:7420');
        expect(w.argv[w.argv.indexOf('--name') + 1]).toBe(w.node);
        expect(Number(w.argv[w.argv.indexOf('--give-up-after') + 1])).toBeGreaterThan(120);
        expect(Number(w.argv[w.argv.indexOf('--max-restarts') + 1])).toBeGreaterThanOrEqual(1);
      }
      const tokens = new Set(res.calls.map((c) => c.token));
      expect(tokens.size).toBe(1);
      expect([...tokens][0]).toMatch(/^[0-9a-f]{64}$/);
    });

    it('gives the real dptrain CLI command lines it accepts', async () => {
      expect(res.calls).toHaveLength(3);
      for (const c of res.calls) {
        const check = await checkDptrainArgs(c.argv, { env: { DPTRAIN_TOKEN: c.token ?? '' } });
        expect(check.errors, c.argv.join(' ')).toEqual([]);
        expect(check.command).toBe(c.argv[0]);
      }
    });
  });
});
