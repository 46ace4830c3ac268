export * from './types.js';
export * from './prng.js';
export * from './pool.js';
export * from './decode.js';
export * from './preprocess.js';
export * from './augment.js';
export * from './loader.js';
