export { type Clock, systemClock } from './clock.js';
export { addErrorContext, addKernelToError, asError, describeErrorContext, describeUnexpectedError, type ErrorContext } from './error-context.js';
export { errorContext, withErrorContext } from './error-context.js';
export { bfloat16ToFloat32, float32ToBfloat16 } from './bf16.js';
export { mix32, mixSeed, mulberry32, MULBERRY32_INCREMENT, mulberry32Output, randInt, type Rng, rngFor, seedFrom, shuffleInPlace, uniform } from './rng.js';
