// @dptrain/coordinator: the cluster only.
export * from './cluster/index.js';
export { startShard, type ShardOptions, type ShardHandle } from './shard/shard-service.js';
