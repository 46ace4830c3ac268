// tsx/vitest read no tsconfig here: ask esbuild for the automatic JSX runtime explicitly
/** @jsxRuntime automatic */
/** @jsxImportSource react */
import { useEffect, useState, useSyncExternalStore } from 'react';
import { Box, Text, useApp, useInput, useStdout } from 'ink';
import { systemClock, type Clock } from '@dptrain/core';
import type { DashboardState, LocalWorkerRow, RecentEvent, WorkerRow } from './run-state.js';
import type { DashboardStore } from './store.js';
import { activeTasks, clusterThroughput, connectedWorkers, phaseEtaMs, phaseProgress, stepTimeP50, stepTimeP99, taskEtaMs } from './selectors.js';
import { fit, formatBytes, formatClock, formatDuration, formatNumber, formatPercent, formatRate, progressBar, sparkline } from './format.js';

export interface DashboardAppProps {
  /** Source of the reduced state. */
  store: DashboardStore;
  /** Clock for ETA and heartbeat ages. Default: the system clock. */
  clock?: Clock;
  /** Re-render period for time-dependent figures (ETA, heartbeat age), in ms; 0 disables. Default 1000. */
  tickMs?: number;
  /** Worker rows shown at once; the arrow keys scroll the rest. Default 8. */
  maxWorkerRows?: number;
  /** Recent events shown. Default 6. */
  maxEvents?: number;
  /** Width of the sparklines in cells. Default 40. */
  sparkWidth?: number;
  /** Text after "dptrain" in the header (e.g. the coordinator address). Default: none. */
  title?: string;
  /** Called when the user presses q (the view closes; the run goes on). Default: nothing. */
  onClose?: () => void;
  /** Called on Ctrl+C (raw mode swallows SIGINT). Default: nothing. */
  onInterrupt?: () => void;
}

const W = { id: 6, host: 12, dev: 18, state: 9, share: 10, rate: 8, ms: 8, strag: 6, bytes: 8, hb: 6 };
/** Width of the fixed columns and separators, without backend/device. */
const FIXED = W.id + W.host + W.state + W.share + W.rate + W.ms + W.strag + 2 * W.bytes + W.hb + 10;

function workerHeader(dev: number): string {
  return [
    fit('worker', W.id),
    fit('host', W.host),
    fit('backend/device', dev),
    fit('state', W.state),
    fit('share/cap', W.share, 'right'),
    fit('img/s', W.rate, 'right'),
    fit('step ms', W.ms, 'right'),
    fit('strag', W.strag, 'right'),
    fit('in', W.bytes, 'right'),
    fit('out', W.bytes, 'right'),
    fit('beat', W.hb, 'right'),
  ].join(' ');
}

function workerLine(w: WorkerRow, now: number, dev: number): string {
  return [
    fit(w.id, W.id),
    fit(w.host, W.host),
    fit(`${w.backend}/${w.device}`, dev),
    fit(w.state, W.state),
    fit(`${w.steps > 0 ? formatPercent(w.share, 0) : '--'}/${w.batchCapacity || '--'}`, W.share, 'right'),
    fit(w.imgPerSec > 0 ? w.imgPerSec.toFixed(1) : '--', W.rate, 'right'),
    fit(w.lastStepMs > 0 ? String(Math.round(w.lastStepMs)) : '--', W.ms, 'right'),
    fit(String(w.stragglerCount), W.strag, 'right'),
    fit(formatBytes(w.bytesIn), W.bytes, 'right'),
    fit(formatBytes(w.bytesOut), W.bytes, 'right'),
    fit(w.lastHeartbeat > 0 ? `${formatDuration(Math.max(0, now - w.lastHeartbeat))}` : '--', W.hb, 'right'),
  ].join(' ');
}

const stateColor: Record<WorkerRow['state'], string> = { joining: 'yellow', idle: 'white', computing: 'green', lost: 'red' };

/** A local worker of an agent, under the agent's row: its share of the whole step and its rate. */
function localWorkerLine(l: LocalWorkerRow, dev: number): string {
  return [
    fit(`  ${l.id}`, W.id),
    fit('', W.host),
    fit('', dev),
    fit('', W.state),
    fit(formatPercent(l.share, 0), W.share, 'right'),
    fit(l.imgPerSec > 0 ? l.imgPerSec.toFixed(1) : '--', W.rate, 'right'),
  ].join(' ');
}

/** The worker table's rows: each worker, then, for an agent, each of its local workers (`local`). */
function workerTableRows(workers: readonly WorkerRow[]): { worker: WorkerRow; local?: LocalWorkerRow }[] {
  return workers.flatMap((worker) => [{ worker }, ...(worker.local ?? []).map((local) => ({ worker, local }))]);
}

const eventColor: Record<RecentEvent['kind'], string> = {
  worker: 'cyan',
  checkpoint: 'blue',
  early_stopping: 'yellow',
  phase: 'magenta',
  lr: 'magenta',
  warn: 'yellow',
  error: 'red',
  run: 'green',
};

function Header({ state, title, now }: { state: DashboardState; title?: string; now: number }) {
  const status =
    state.status === 'completed'
      ? 'completed'
      : state.status === 'waiting'
        ? state.waiting
          ? `waiting for workers ${state.waiting.connected}/${state.waiting.required}`
          : 'waiting'
        : 'running';
  const elapsed = state.startedAt !== undefined ? formatDuration((state.completed ? state.lastEventTime : now) - state.startedAt) : '--';
  return (
    <Box>
      <Text bold color="cyan">
        dptrain
      </Text>
      <Text>{title ? ` ${title}` : ''}</Text>
      <Text>{state.runId ? `  run ${state.runId}` : ''}</Text>
      <Text dimColor>{state.backend ? `  ${state.backend} · ${state.device ?? '?'}${state.precision ? ` · ${state.precision}` : ''}` : ''}</Text>
      <Text color={state.status === 'completed' ? 'green' : state.status === 'waiting' ? 'yellow' : 'cyan'}>{`  ● ${status}`}</Text>
      <Text dimColor>{`  elapsed ${elapsed}`}</Text>
    </Box>
  );
}

function ProgressLine({ state, now }: { state: DashboardState; now: number }) {
  const p = state.phase;
  const prog = phaseProgress(state);
  if (!p || !prog) return <Text dimColor>no training phase yet</Text>;
  const ordinal = state.phasesSeen.length;
  const phase = `phase ${ordinal > 0 ? ordinal : '?'} ${p.name === 'head' ? 'head' : 'fine-tune'}`;
  const epoch = `epoch ${p.epochOrdinal}/${p.epochs || '?'}`;
  const eta = state.status === 'completed' ? 'done' : `ETA ${formatDuration(phaseEtaMs(state, now))}`;
  return (
    <Box>
      <Text bold>{`${phase}  ${epoch}  step ${state.step}  `}</Text>
      <Text color="green">{progressBar(prog.fraction, 30)}</Text>
      <Text>{` ${formatPercent(prog.fraction)} ${prog.done}/${prog.total || '?'}  ${eta}`}</Text>
    </Box>
  );
}

function Throughput({ state }: { state: DashboardState }) {
  const tp = clusterThroughput(state);
  const p50 = stepTimeP50(state);
  const p99 = stepTimeP99(state);
  return (
    <Text>
      {`throughput ${tp === undefined ? '--' : tp.toFixed(1)} img/s   step p50 ${formatDuration(p50)}  p99 ${formatDuration(p99)}   lr ${formatRate(state.learningRate)}   samples ${state.samplesTotal}`}
    </Text>
  );
}

function Workers({ state, now, offset, rows, columns }: { state: DashboardState; now: number; offset: number; rows: number; columns: number }) {
  // backend/device takes whatever width the terminal has beyond the fixed columns
  const dev = Math.max(W.dev, Math.min(48, columns - 1 - FIXED));
  const list = workerTableRows(state.workers);
  const shown = list.slice(offset, offset + rows);
  const more = list.length > rows ? `  (${offset + 1}-${offset + shown.length} of ${list.length}, ↑↓ to scroll)` : '';
  return (
    <Box flexDirection="column" marginTop={1}>
      <Text bold>{`workers ${connectedWorkers(state)} connected${more}`}</Text>
      <Text dimColor>{workerHeader(dev)}</Text>
      {shown.length === 0 ? <Text dimColor>no workers yet</Text> : null}
      {shown.map(({ worker, local }) => (
        <Text key={local ? `${worker.id}/${local.id}` : worker.id} color={stateColor[worker.state]} wrap="truncate">
          {local ? localWorkerLine(local, dev) : workerLine(worker, now, dev)}
        </Text>
      ))}
    </Box>
  );
}

function Sparks({ state, width }: { state: DashboardState; width: number }) {
  const e = state.lastEpoch;
  return (
    <Box flexDirection="column" marginTop={1}>
      <Text>
        {'loss     '}
        <Text color="yellow">{fit(sparkline(state.lossSeries, width), width)}</Text>
        {`  ${formatNumber(state.lastLoss)}`}
      </Text>
      <Text wrap="truncate">
        {'val acc  '}
        <Text color="green">{fit(sparkline(state.valAccSeries, width), width)}</Text>
        {`  ${formatPercent(e?.valAccuracy)}${state.bestValAccuracy !== undefined ? ` (best ${formatPercent(state.bestValAccuracy)})` : ''}`}
        {e ? `  train acc ${formatPercent(e.trainAccuracy)}  val loss ${formatNumber(e.valLoss)}` : ''}
        {state.earlyStopping ? `  patience ${state.earlyStopping.wait}/${state.earlyStopping.patience}` : ''}
      </Text>
    </Box>
  );
}

function Tasks({ state, now }: { state: DashboardState; now: number }) {
  const tasks = activeTasks(state);
  if (tasks.length === 0) return null;
  return (
    <Box flexDirection="column" marginTop={1}>
      {tasks.map((t) => (
        <Text key={t.task}>
          {`${fit(t.task.replace('_', ' '), 17)} `}
          <Text color="cyan">{progressBar(t.total > 0 ? t.done / t.total : 0, 24)}</Text>
          {` ${t.done}/${t.total}  ETA ${formatDuration(taskEtaMs(t, now))}`}
        </Text>
      ))}
    </Box>
  );
}

function Events({ state, max }: { state: DashboardState; max: number }) {
  const list = state.recent.slice(-max);
  return (
    <Box flexDirection="column" marginTop={1}>
      <Text bold>events</Text>
      {list.length === 0 ? <Text dimColor>none yet</Text> : null}
      {list.map((e, i) => (
        <Text key={`${e.time}-${i}`} wrap="truncate">
          <Text dimColor>{`${formatClock(e.time)} `}</Text>
          <Text color={eventColor[e.kind]}>{e.text}</Text>
        </Text>
      ))}
    </Box>
  );
}

function Completed({ state }: { state: DashboardState }) {
  const c = state.completed;
  if (!c) return null;
  return (
    <Text color="green" bold>
      {`run completed in ${formatDuration(c.wallMs)}: val acc ${formatPercent(c.valAccuracy)}, val loss ${formatNumber(c.valLoss)}, ${c.steps} steps${c.submissionPath ? `, submission ${c.submissionPath}` : ''}`}
    </Text>
  );
}

/** Lines of the view besides worker rows, events and tasks (titles, margins, sparklines, footer). */
const FIXED_LINES = 15;

/** Worker rows and events that fit a terminal of `rows` lines (a frame taller than the terminal flickers). */
export function fitRows(rows: number | undefined, tasks: number, maxWorkers: number, maxEvents: number): { workerRows: number; events: number } {
  if (!rows || rows <= 0) return { workerRows: maxWorkers, events: maxEvents };
  const avail = rows - FIXED_LINES - (tasks > 0 ? tasks + 1 : 0);
  const workerRows = Math.max(1, Math.min(maxWorkers, Math.ceil(avail / 2)));
  const events = Math.max(1, Math.min(maxEvents, avail - workerRows));
  return { workerRows, events };
}

/** The dashboard: a pure view of the store's state plus local UI state (worker scroll offset). */
export function DashboardApp(props: DashboardAppProps) {
  const { store, clock = systemClock, tickMs = 1000, sparkWidth = 40 } = props;
  const state = useSyncExternalStore(store.subscribe, store.getState, store.getState);
  const [now, setNow] = useState(() => clock.now());
  const [offset, setOffset] = useState(0);
  const { exit } = useApp();
  const { stdout } = useStdout();
  const columns = stdout.columns || 100;
  const { workerRows: maxWorkerRows, events: maxEvents } = fitRows(stdout.rows, activeTasks(state).length, props.maxWorkerRows ?? 8, props.maxEvents ?? 6);

  useEffect(() => {
    if (tickMs <= 0) return undefined;
    const t = setInterval(() => setNow(clock.now()), tickMs);
    return () => clearInterval(t);
  }, [clock, tickMs]);

  // re-read the clock whenever the state changes, so ETA and ages are fresh
  useEffect(() => {
    setNow(clock.now());
  }, [state, clock]);

  const maxOffset = Math.max(0, workerTableRows(state.workers).length - maxWorkerRows);
  const shownOffset = Math.min(offset, maxOffset);

  useInput((input, key) => {
    if (input === 'q') {
      props.onClose?.();
      exit();
    } else if (key.ctrl && input === 'c') {
      props.onInterrupt?.();
    } else if (key.downArrow) {
      setOffset((o) => Math.min(Math.min(o, maxOffset) + 1, maxOffset));
    } else if (key.upArrow) {
      setOffset((o) => Math.max(Math.min(o, maxOffset) - 1, 0));
    } else if (key.pageDown) {
      setOffset((o) => Math.min(Math.min(o, maxOffset) + maxWorkerRows, maxOffset));
    } else if (key.pageUp) {
      setOffset((o) => Math.max(Math.min(o, maxOffset) - maxWorkerRows, 0));
    }
  });

  return (
    <Box flexDirection="column">
      <Header state={state} title={props.title} now={now} />
      <ProgressLine state={state} now={now} />
      <Throughput state={state} />
      <Workers state={state} now={now} offset={shownOffset} rows={maxWorkerRows} columns={columns} />
      <Sparks state={state} width={sparkWidth} />
      <Tasks state={state} now={now} />
      <Events state={state} max={maxEvents} />
      <Completed state={state} />
      <Text dimColor>q close the view (the run goes on) · ↑↓ scroll workers</Text>
    </Box>
  );
}
