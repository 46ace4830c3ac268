import type { DashboardState, TaskProgress } from './run-state.js';

/** Nearest-rank percentile (p in [0, 100]) of a list; undefined for an empty list. */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** Cluster throughput over the recent step window: samples / summed step time. */
export function clusterThroughput(state: DashboardState): number | undefined {
  const ms = state.stepMsWindow.reduce((a, b) => a + b, 0);
  if (ms <= 0) return undefined;
  const samples = state.samplesWindow.reduce((a, b) => a + b, 0);
  return (samples * 1000) / ms;
}

export function stepTimeP50(state: DashboardState): number | undefined {
  return percentile(state.stepMsWindow, 50);
}
export function stepTimeP99(state: DashboardState): number | undefined {
  return percentile(state.stepMsWindow, 99);
}

export interface PhaseProgress {
  done: number;
  total: number;
  fraction: number;
}

/** Steps done and planned in the current phase (planned = epochs x steps per epoch). */
export function phaseProgress(state: DashboardState): PhaseProgress | undefined {
  const p = state.phase;
  if (!p) return undefined;
  const total = p.epochs * p.stepsPerEpoch;
  if (total <= 0) return { done: p.stepsDone, total: 0, fraction: 0 };
  return { done: p.stepsDone, total, fraction: Math.min(1, p.stepsDone / total) };
}

/**
 * Time left in the current phase, in ms: remaining steps at the mean wall-clock pace of the recent window
 * (time between step events, which includes validation), measured up to `now` from the injectable clock.
 */
export function phaseEtaMs(state: DashboardState, now: number): number | undefined {
  const prog = phaseProgress(state);
  const p = state.phase;
  if (!prog || !p || prog.total === 0 || prog.done === 0) return undefined;
  const remaining = prog.total - prog.done;
  if (remaining <= 0) return 0;
  const times = state.stepTimeWindow;
  let perStep: number;
  if (times.length >= 2) {
    const first = times[0]!;
    const last = times[times.length - 1]!;
    perStep = (last - first) / (times.length - 1);
  } else {
    const ms = state.stepMsWindow.reduce((a, b) => a + b, 0);
    perStep = state.stepMsWindow.length > 0 ? ms / state.stepMsWindow.length : 0;
  }
  if (!(perStep > 0)) {
    const p50 = stepTimeP50(state);
    if (p50 === undefined) return undefined;
    perStep = p50;
  }
  const last = times[times.length - 1] ?? state.lastEventTime;
  // time already spent on the step in flight counts against the estimate
  const sinceLast = Math.max(0, now - last);
  return Math.max(0, remaining * perStep - Math.min(sinceLast, perStep));
}

/** ETA of a long task from its own pace. */
export function taskEtaMs(task: TaskProgress, now: number): number | undefined {
  if (task.done <= 0 || task.done >= task.total) return task.done >= task.total ? 0 : undefined;
  const elapsed = Math.max(now, task.updatedAt) - task.startedAt;
  return (elapsed / task.done) * (task.total - task.done);
}

/** Tasks still running (done < total). */
export function activeTasks(state: DashboardState): TaskProgress[] {
  return state.tasks.filter((t) => t.done < t.total);
}

export function connectedWorkers(state: DashboardState): number {
  return state.workers.filter((w) => w.state !== 'lost').length;
}
