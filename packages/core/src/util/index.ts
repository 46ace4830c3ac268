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
