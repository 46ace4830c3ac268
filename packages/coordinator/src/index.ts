// @dptrain/coordinator — explicit barrel. Each area keeps its own index.ts.
export * from './dashboard/index.js';
export * from './observability/index.js';
