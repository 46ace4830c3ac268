// @dptrain/coordinator: the cluster only.
export * from './cluster/index.js';
