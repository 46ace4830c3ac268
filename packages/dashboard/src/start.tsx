// tsx/vitest read no tsconfig here: ask esbuild for the automatic JSX runtime explicitly
/** @jsxRuntime automatic */
/** @jsxImportSource react */
import { render } from 'ink';
import type { Clock, EventBus, RunEvent } from '@dptrain/core';
import { DashboardApp } from './view.js';
import { DashboardStore } from './store.js';
import type { DashboardLimits } from './run-state.js';

export interface StartDashboardOptions {
  /** Where to draw. Default: process.stdout. */
  stdout?: NodeJS.WriteStream;
  /** Where keys come from. Default: process.stdin. */
  stdin?: NodeJS.ReadStream;
  /** Clock for ETA and heartbeat ages. Default: the system clock. */
  clock?: Clock;
  /** Text after "dptrain" in the header. Default: none. */
  title?: string;
  /** Worker rows shown at once. Default 8. */
  maxWorkerRows?: number;
  /** Events already emitted before the view starts (replayed first). Default: none. */
  history?: RunEvent[];
  /** Window and series bounds. Default: see `initialDashboardState`. */
  limits?: Partial<DashboardLimits>;
  /** Called once the view has closed (q, `close()`, or the end). Default: nothing. */
  onClose?: () => void;
  /**
   * Called on Ctrl+C: the terminal is in raw mode, so the process gets no SIGINT by itself.
   * Default: send SIGINT to the process group, as a terminal would, so the command's handler (or the default exit) runs.
   */
  onInterrupt?: () => void;
}

export interface DashboardHandle {
  /** The store the view reads (its state is the reducer over all events seen). */
  store: DashboardStore;
  /** Closes the view; the run is not affected. Idempotent. */
  close(): void;
  /** Resolves when the view has closed. */
  closed: Promise<void>;
}

/**
 * Draws the ink dashboard for the events of `bus` until `q` or `close()`. Closing the view never stops the run:
 * the bus keeps its other listeners (plain log, JSON log, metrics).
 */
export function startDashboard(bus: EventBus, options: StartDashboardOptions = {}): DashboardHandle {
  const store = new DashboardStore({ limits: options.limits });
  for (const e of options.history ?? []) store.dispatch(e);
  store.attach(bus);
  let closed = false;
  let resolveClosed!: () => void;
  const closedP = new Promise<void>((r) => (resolveClosed = r));
  const finish = (): void => {
    if (closed) return;
    closed = true;
    store.close();
    options.onClose?.();
    resolveClosed();
  };
  const instance = render(
    <DashboardApp
      store={store}
      clock={options.clock}
      title={options.title}
      maxWorkerRows={options.maxWorkerRows}
      // like Ctrl+C in a cooked terminal: the whole foreground process group (local workers too) gets SIGINT
      onInterrupt={options.onInterrupt ?? (() => process.kill(0, 'SIGINT'))}
    />,
    {
      stdout: options.stdout ?? process.stdout,
      stdin: options.stdin ?? process.stdin,
      exitOnCtrlC: false,
      patchConsole: true,
      maxFps: 10,
    },
  );
  instance.waitUntilExit().then(finish, finish);
  return {
    store,
    closed: closedP,
    close() {
      if (closed) return;
      instance.unmount();
      finish();
    },
  };
}
