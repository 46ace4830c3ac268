export * from './options.js';
export * from './messages.js';
export * from './codec.js';
export * from './auth.js';
export * from './fp16.js';
export * from './gradients.js';
export { tokenEntropyBits, tokenWeakness, type TokenStrengthOptions } from './token-strength.js';
