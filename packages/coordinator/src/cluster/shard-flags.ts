import type { Command } from 'commander';
import { DptrainError } from '@dptrain/core';
import type { CoordinatorOptions } from './run-coordinator.js';

/** `--shards`, `--shard-bucket-floats`, `--max-rollbacks` as commander gives them. */
export interface ShardFlagValues {
  shards?: string;
  shardBucketFloats?: string;
  maxRollbacks?: string;
}

/** The sharded summation service's flags (`coordinator`, `single`). */
export function addShardFlags(cmd: Command): Command {
  return cmd
    .option(
      '--shards <S|auto>',
      'sharded summation: S shards (dptrain shard) each merge and update a range of the weights; auto: one beside each agent, started by the agent (default: none)',
    )
    .option('--shard-bucket-floats <n>', 'floats per bucket; shard ranges start and end on bucket boundaries (default 1048576)')
    .option('--max-rollbacks <n>', 'rollbacks to the last checkpoint after a lost shard, for the whole run (default 3)');
}

function count(v: string | undefined, flag: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new DptrainError('E_CONFIG', `${flag}: '${v}' is not an integer >= ${min}`);
  return n;
}

/** The coordinator's shard options, or undefined without `--shards`. */
export function toShardOptions(f: ShardFlagValues): CoordinatorOptions['shards'] {
  if (f.shards === undefined) return undefined;
  const shards = f.shards === 'auto' ? 'auto' : count(f.shards, '--shards', 1)!;
  const bucketFloats = count(f.shardBucketFloats, '--shard-bucket-floats', 1);
  const maxRollbacks = count(f.maxRollbacks, '--max-rollbacks', 0);
  return { shards, ...(bucketFloats !== undefined ? { bucketFloats } : {}), ...(maxRollbacks !== undefined ? { maxRollbacks } : {}) };
}
