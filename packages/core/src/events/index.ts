export {
  type PhaseName,
  type ProgressTask,
  type RunEvent,
  type RunEventListener,
  type RunEventType,
  type LocalWorkerStat,
  type StepWorkerStat,
  type WorkerInfo,
} from './types.js';
export { type WorkerState } from './types.js';
export { EventBus } from './bus.js';
export { sanitizeEvent, stripControl, type StripControlOptions } from './sanitize.js';
