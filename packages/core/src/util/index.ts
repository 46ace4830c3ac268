export * from './clock.js';
export {
  addErrorContext,
  addKernelToError,
  asError,
  describeErrorContext,
  describeUnexpectedError,
  errorContext,
  withErrorContext,
  type ErrorContext,
} from './error-context.js';
export { bfloat16ToFloat32, float32ToBfloat16 } from './bf16.js';
export { MULBERRY32_INCREMENT, mix32, mixSeed, mulberry32, mulberry32Output, randInt, rngFor, seedFrom, shuffleInPlace, uniform, type Rng } from './rng.js';
