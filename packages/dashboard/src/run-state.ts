import type { PhaseName, ProgressTask, RunEvent, WorkerState } from '@dptrain/core';
import { formatDuration, formatPercent, formatRate } from './format.js';

/** One row of the worker table. */
export interface WorkerRow {
  id: string;
  host: string;
  backend: string;
  device: string;
  state: WorkerState;
  /** Images per second of the worker's last step (its samples over its compute time). */
  imgPerSec: number;
  /** Compute time of the worker's last step, in ms. */
  lastStepMs: number;
  /** Steps in which this worker was the slowest. */
  stragglerCount: number;
  /** Bytes received from the worker so far (max of summed step figures and heartbeat totals). */
  bytesIn: number;
  /** Bytes sent to the worker so far. */
  bytesOut: number;
  /** Time (ms since epoch) of the last heartbeat, step or join seen from the worker. */
  lastHeartbeat: number;
  /** Steps the worker took part in. */
  steps: number;
  /** Fraction of the last step's samples that this worker computed (0 when it sat the step out). */
  share: number;
  /** Largest part the worker takes (its --batch-capacity; 0 until it joined). */
  batchCapacity: number;
  /** Why the worker was lost, when state is 'lost'. */
  lostReason?: string;
  /** An agent: its local workers in its last step (share of the whole step, rate). Absent for a plain worker. */
  local?: LocalWorkerRow[];
}

/** A local worker of an agent, as its last step showed it. */
export interface LocalWorkerRow {
  /** Its id on the agent (w1, w2, ...). */
  id: string;
  /** Fraction of the whole step's samples that it computed. */
  share: number;
  /** Images per second of its share (0 when it reported no compute time). */
  imgPerSec: number;
}

/** A line of the "recent events" list. */
export interface RecentEvent {
  time: number;
  kind: 'worker' | 'checkpoint' | 'early_stopping' | 'phase' | 'lr' | 'warn' | 'error' | 'run';
  text: string;
}

/** A long single-process task (validation, feature extraction, evaluation, ...). */
export interface TaskProgress {
  task: ProgressTask;
  done: number;
  total: number;
  startedAt: number;
  updatedAt: number;
}

export interface PhaseState {
  name: PhaseName;
  epochs: number;
  stepsPerEpoch: number;
  startedAt: number;
  /** The current epoch's ordinal within the phase, 1-based (events number epochs from 0). */
  epochOrdinal: number;
  /** The epoch number as the events carry it (0-based within the phase). */
  epoch: number;
  /** Steps completed in this phase (epoch x stepsPerEpoch + stepInEpoch of the last step). */
  stepsDone: number;
  /** Steps completed in the current epoch. */
  stepsInEpoch: number;
  learningRate: number;
  trainableParams: number;
}

export interface DashboardState {
  runId?: string;
  runDir?: string;
  backend?: string;
  device?: string;
  /** Precision of the run ('fp32', 'bf16'), from run_started. */
  precision?: string;
  classes: string[];
  trainSamples: number;
  valSamples: number;
  startedAt?: number;
  status: 'waiting' | 'running' | 'completed';
  waiting?: { connected: number; required: number };
  phase?: PhaseState;
  /** Phases begun so far, in order. */
  phasesSeen: PhaseName[];
  /** Global step of the last completed step. */
  step: number;
  lastLoss?: number;
  learningRate?: number;
  /** Recent cluster step durations (ms), newest last, at most `window` long. */
  stepMsWindow: number[];
  /** Samples of the same recent steps. */
  samplesWindow: number[];
  /** Event times of the same recent steps. */
  stepTimeWindow: number[];
  samplesTotal: number;
  workers: WorkerRow[];
  /** Training loss per step, newest last, at most `seriesLength` points. */
  lossSeries: number[];
  /** Validation accuracy per epoch, newest last. */
  valAccSeries: number[];
  lastEpoch?: { trainLoss: number; trainAccuracy: number; valLoss: number; valAccuracy: number };
  bestValAccuracy?: number;
  earlyStopping?: { wait: number; patience: number; stopped: boolean };
  lastCheckpoint?: { path: string; step: number; time: number };
  tasks: TaskProgress[];
  recent: RecentEvent[];
  completed?: { valAccuracy: number; valLoss: number; steps: number; wallMs: number; submissionPath?: string };
  /** Time of the newest event seen. */
  lastEventTime: number;
  /** Bounds, fixed at creation. */
  limits: DashboardLimits;
}

export interface DashboardLimits {
  /** Steps kept for throughput and p50/p99. Default 200. */
  window: number;
  /** Points kept in the loss and validation-accuracy series. Default 200. */
  seriesLength: number;
  /** Recent events kept. Default 50. */
  recentEvents: number;
}

export function initialDashboardState(limits: Partial<DashboardLimits> = {}): DashboardState {
  return {
    classes: [],
    trainSamples: 0,
    valSamples: 0,
    status: 'waiting',
    phasesSeen: [],
    step: 0,
    stepMsWindow: [],
    samplesWindow: [],
    stepTimeWindow: [],
    samplesTotal: 0,
    workers: [],
    lossSeries: [],
    valAccSeries: [],
    tasks: [],
    recent: [],
    lastEventTime: 0,
    limits: { window: limits.window ?? 200, seriesLength: limits.seriesLength ?? 200, recentEvents: limits.recentEvents ?? 50 },
  };
}

function push<T>(list: T[], item: T, max: number): T[] {
  const next = list.length >= max ? list.slice(list.length - max + 1) : list.slice();
  next.push(item);
  return next;
}

function note(state: DashboardState, time: number, kind: RecentEvent['kind'], text: string): RecentEvent[] {
  return push(state.recent, { time, kind, text }, state.limits.recentEvents);
}

function updateWorker(workers: WorkerRow[], id: string, f: (w: WorkerRow) => WorkerRow): WorkerRow[] {
  let found = false;
  const next = workers.map((w) => {
    if (w.id !== id) return w;
    found = true;
    return f(w);
  });
  if (!found) next.push(f(blankWorker(id, 0)));
  return next;
}

function blankWorker(id: string, time: number): WorkerRow {
  return {
    id,
    host: '?',
    backend: '?',
    device: '?',
    state: 'joining',
    imgPerSec: 0,
    lastStepMs: 0,
    stragglerCount: 0,
    share: 0,
    batchCapacity: 0,
    bytesIn: 0,
    bytesOut: 0,
    lastHeartbeat: time,
    steps: 0,
  };
}

const phaseLabel = (p: PhaseName): string => (p === 'head' ? 'head' : 'fine-tune');

/**
 * The dashboard state as a pure function of the event stream: `events.reduce(dashboardReducer, initial)`.
 * Never mutates its input; unknown events leave the state unchanged.
 */
export function dashboardReducer(state: DashboardState, event: RunEvent): DashboardState {
  const s: DashboardState = { ...state, lastEventTime: Math.max(state.lastEventTime, event.time) };
  switch (event.type) {
    case 'run_started':
      return {
        ...s,
        runId: event.runId,
        runDir: event.runDir,
        backend: event.backend,
        device: event.device,
        ...(event.precision ? { precision: event.precision } : {}),
        classes: event.classes,
        trainSamples: event.trainSamples,
        valSamples: event.valSamples,
        startedAt: event.time,
        status: 'running',
        recent: note(
          s,
          event.time,
          'run',
          `run ${event.runId} started: ${event.workers} worker(s), ${event.trainSamples} train / ${event.valSamples} val samples`,
        ),
      };
    case 'waiting_for_workers':
      // training pauses while too few workers are connected (at the start, or after losses)
      return {
        ...s,
        waiting: { connected: event.connected, required: event.required },
        status: s.status === 'completed' ? s.status : event.connected < event.required ? 'waiting' : 'running',
      };
    case 'phase_started':
      return {
        ...s,
        status: 'running',
        phase: {
          name: event.phase,
          epochs: event.epochs,
          stepsPerEpoch: event.stepsPerEpoch,
          startedAt: event.time,
          epochOrdinal: 0,
          epoch: 0,
          stepsDone: 0,
          stepsInEpoch: 0,
          learningRate: event.learningRate,
          trainableParams: event.trainableParams,
        },
        phasesSeen: [...s.phasesSeen, event.phase],
        learningRate: event.learningRate,
        // the step window measures one phase: phases differ in cost (head vs fine-tune)
        stepMsWindow: [],
        samplesWindow: [],
        stepTimeWindow: [],
        recent: note(
          s,
          event.time,
          'phase',
          `phase ${phaseLabel(event.phase)}: ${event.epochs} epoch(s) x ${event.stepsPerEpoch} steps, lr ${formatRate(event.learningRate)}, ${event.trainableParams} trainable params`,
        ),
      };
    case 'epoch_started': {
      if (!s.phase) return s;
      // epochs are numbered from 0 within their phase (see EpochRecord); a resumed run starts mid-phase
      return { ...s, phase: { ...s.phase, epoch: event.epoch, epochOrdinal: event.epoch + 1, stepsInEpoch: 0 } };
    }
    case 'step_completed': {
      const { limits } = s;
      // each worker's share of this step (those not in it: none)
      let workers = s.workers.map((w) => (w.share > 0 ? { ...w, share: 0, ...(w.local ? { local: w.local.map((l) => ({ ...l, share: 0 })) } : {}) } : w));
      for (const ws of event.workers) {
        workers = updateWorker(workers, ws.id, (w) => ({
          ...w,
          state: w.state === 'lost' ? 'lost' : 'computing',
          imgPerSec: ws.computeMs > 0 ? (ws.samples * 1000) / ws.computeMs : w.imgPerSec,
          lastStepMs: ws.computeMs,
          bytesIn: w.bytesIn + ws.bytesIn,
          bytesOut: w.bytesOut + ws.bytesOut,
          lastHeartbeat: Math.max(w.lastHeartbeat, event.time),
          steps: w.steps + 1,
          share: event.samples > 0 ? ws.samples / event.samples : 0,
          stragglerCount: w.stragglerCount + (event.straggler === ws.id ? 1 : 0),
          ...(ws.local
            ? {
                // in id order (w1, w2, ..., w10), not in the order the agent's workers happened to answer
                local: [...ws.local]
                  .sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }))
                  .map((l) => ({
                    id: l.id,
                    share: event.samples > 0 ? l.samples / event.samples : 0,
                    imgPerSec: l.computeMs > 0 ? (l.samples * 1000) / l.computeMs : 0,
                  })),
              }
            : {}),
        }));
      }
      if (event.straggler && !event.workers.some((w) => w.id === event.straggler)) {
        workers = updateWorker(workers, event.straggler, (w) => ({ ...w, stragglerCount: w.stragglerCount + 1 }));
      }
      // position from the event itself (epoch 0-based, stepInEpoch 1-based), so resumed runs and
      // dashboards attached mid-run show the true progress
      const position = {
        epoch: event.epoch,
        epochOrdinal: event.epoch + 1,
        stepsInEpoch: event.stepInEpoch,
        stepsDone: event.epoch * event.stepsPerEpoch + event.stepInEpoch,
      };
      const phase: PhaseState =
        s.phase && s.phase.name === event.phase
          ? { ...s.phase, ...position, stepsPerEpoch: event.stepsPerEpoch }
          : {
              // a dashboard attached mid-run without the phase start still shows steps
              name: event.phase,
              epochs: 0,
              stepsPerEpoch: event.stepsPerEpoch,
              startedAt: event.time,
              ...position,
              learningRate: event.learningRate,
              trainableParams: 0,
            };
      return {
        ...s,
        status: 'running',
        phase,
        step: event.step,
        lastLoss: event.loss,
        learningRate: event.learningRate,
        stepMsWindow: push(s.stepMsWindow, event.stepMs, limits.window),
        samplesWindow: push(s.samplesWindow, event.samples, limits.window),
        stepTimeWindow: push(s.stepTimeWindow, event.time, limits.window),
        samplesTotal: s.samplesTotal + event.samples,
        workers,
        lossSeries: Number.isFinite(event.loss) ? push(s.lossSeries, event.loss, limits.seriesLength) : s.lossSeries,
      };
    }
    case 'epoch_completed': {
      const best = s.bestValAccuracy === undefined ? event.valAccuracy : Math.max(s.bestValAccuracy, event.valAccuracy);
      return {
        ...s,
        lastEpoch: { trainLoss: event.trainLoss, trainAccuracy: event.trainAccuracy, valLoss: event.valLoss, valAccuracy: event.valAccuracy },
        bestValAccuracy: best,
        valAccSeries: push(s.valAccSeries, event.valAccuracy, s.limits.seriesLength),
        learningRate: event.learningRate,
        workers: s.workers.map((w) => (w.state === 'computing' ? { ...w, state: 'idle' } : w)),
      };
    }
    case 'worker_joined': {
      const { worker } = event;
      const others = s.workers.filter((w) => w.id !== worker.id);
      const prev = s.workers.find((w) => w.id === worker.id);
      const row: WorkerRow = {
        ...(prev ?? blankWorker(worker.id, event.time)),
        host: worker.host,
        backend: worker.backend,
        device: worker.device,
        batchCapacity: worker.batchCapacity,
        state: 'idle',
        lastHeartbeat: event.time,
      };
      delete row.lostReason;
      return {
        ...s,
        workers: prev ? s.workers.map((w) => (w.id === worker.id ? row : w)) : [...others, row],
        recent: note(s, event.time, 'worker', `worker ${worker.id} joined from ${worker.host} (${worker.backend}, ${worker.device})`),
      };
    }
    case 'worker_lost':
      return {
        ...s,
        workers: updateWorker(s.workers, event.id, (w) => ({ ...w, state: 'lost', lostReason: event.reason })),
        recent: note(s, event.time, 'worker', `worker ${event.id} lost: ${event.reason}`),
      };
    case 'worker_heartbeat':
      return {
        ...s,
        workers: updateWorker(s.workers, event.id, (w) => ({
          ...w,
          bytesIn: Math.max(w.bytesIn, event.bytesIn),
          bytesOut: Math.max(w.bytesOut, event.bytesOut),
          lastHeartbeat: Math.max(w.lastHeartbeat, event.time),
        })),
      };
    case 'checkpoint_written':
      return {
        ...s,
        lastCheckpoint: { path: event.path, step: event.step, time: event.time },
        recent: note(s, event.time, 'checkpoint', `checkpoint at step ${event.step}: ${event.path}`),
      };
    case 'early_stopping':
      return {
        ...s,
        earlyStopping: { wait: event.wait, patience: event.patience, stopped: event.stopped },
        recent: note(
          s,
          event.time,
          'early_stopping',
          event.stopped
            ? `early stopping: no improvement for ${event.wait} epoch(s), phase stopped`
            : `early stopping: ${event.wait}/${event.patience} epoch(s) without improvement`,
        ),
      };
    case 'lr_changed':
      return {
        ...s,
        learningRate: event.learningRate,
        recent: note(s, event.time, 'lr', `learning rate ${formatRate(event.learningRate)} (${event.reason})`),
      };
    case 'progress': {
      const prev = s.tasks.find((t) => t.task === event.task);
      const restarted = prev !== undefined && (event.done < prev.done || event.total !== prev.total);
      const task: TaskProgress = {
        task: event.task,
        done: event.done,
        total: event.total,
        startedAt: prev && !restarted ? prev.startedAt : event.time,
        updatedAt: event.time,
      };
      return { ...s, tasks: [...s.tasks.filter((t) => t.task !== event.task), task] };
    }
    case 'frame_rejected':
      return {
        ...s,
        recent: note(s, event.time, 'warn', `frame rejected [${event.code}]${event.workerId ? ` from ${event.workerId}` : ''}: ${event.reason}`),
      };
    case 'run_completed':
      return {
        ...s,
        status: 'completed',
        completed: {
          valAccuracy: event.valAccuracy,
          valLoss: event.valLoss,
          steps: event.steps,
          wallMs: event.wallMs,
          ...(event.submissionPath !== undefined ? { submissionPath: event.submissionPath } : {}),
        },
        workers: s.workers.map((w) => (w.state === 'computing' ? { ...w, state: 'idle' } : w)),
        recent: note(
          s,
          event.time,
          'run',
          `done: ${event.steps} steps, val acc ${formatPercent(event.valAccuracy, 2)}, ${formatDuration(event.wallMs)}${event.submissionPath ? `, submission ${event.submissionPath}` : ''}`,
        ),
      };
    case 'log':
      if (event.level === 'debug') return s;
      return { ...s, recent: note(s, event.time, event.level === 'info' ? 'run' : event.level, event.message) };
    default:
      return state;
  }
}
