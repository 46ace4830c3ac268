import type { Command } from 'commander';
import { DptrainError } from '@dptrain/core';
import type { ClusterExecutorOptions } from './executor.js';

/** Flags of `coordinator` and `single` that bound what a worker's answer may be: its gradient's norm, its lateness. */
export interface StepGuardFlagValues {
  maxGradNormRatio?: string;
  maxGradNorm?: string;
  firstStepTimeout?: string;
  stepTimeoutFloor?: string;
  stepTimeoutFactor?: string;
}

export function addStepGuardFlags(cmd: Command): Command {
  return cmd
    .option('--max-grad-norm-ratio <x>', "refuse a worker's gradient whose norm is above X times the median of the last accepted ones (default 100)")
    .option('--max-grad-norm <n>', "refuse a worker's gradient whose L2 norm is above N (default: no absolute bound)")
    .option(
      '--first-step-timeout <s>',
      "deadline of a worker's first request of a phase, in seconds (default 300; at least 2700 for a GPU that tfjs-node-gpu runs through the PTX JIT, e.g. Hopper)",
    )
    .option('--step-timeout-floor <s>', 'least deadline of any later request, in seconds (default 30)')
    .option('--step-timeout-factor <x>', "a later request's deadline is X times the worker's measured time for as many samples (default 10)");
}

function positive(v: string | undefined, flag: string, above = 0): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= above) throw new DptrainError('E_CONFIG', `${flag}: '${v}' is not a number above ${above}`);
  return n;
}

/** The executor options those flags set (absent flags: the executor's defaults). */
export function toStepGuardOptions(f: StepGuardFlagValues): Pick<ClusterExecutorOptions, 'gradientNorm' | 'deadlines'> {
  const ratio = positive(f.maxGradNormRatio, '--max-grad-norm-ratio', 1);
  const maxNorm = positive(f.maxGradNorm, '--max-grad-norm');
  const first = positive(f.firstStepTimeout, '--first-step-timeout');
  const floor = positive(f.stepTimeoutFloor, '--step-timeout-floor');
  const factor = positive(f.stepTimeoutFactor, '--step-timeout-factor');
  return {
    gradientNorm: { ...(ratio !== undefined ? { maxRatio: ratio } : {}), ...(maxNorm !== undefined ? { maxNorm } : {}) },
    deadlines: {
      ...(first !== undefined ? { firstStepTimeoutMs: first * 1000 } : {}),
      ...(floor !== undefined ? { floorMs: floor * 1000 } : {}),
      ...(factor !== undefined ? { factor } : {}),
    },
  };
}
