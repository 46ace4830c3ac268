export * from './types.js';
export * from './bus.js';
export { sanitizeEvent, stripControl, type StripControlOptions } from './sanitize.js';
