import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Option, type Command } from 'commander';
import type { EventBus } from '@dptrain/core';
import type {
  DashboardHandle,
  DashboardState,
  JsonLogHandle,
  MetricsServer,
  ObservabilityHandler,
  PlainLoggerHandle,
  RunMetrics,
  SummaryInput,
} from '@dptrain/dashboard';
import { loadDashboard } from './load-dashboard.js';

/** Values of the flags added by `addViewFlags`. */
export interface ViewFlagValues {
  plain?: boolean;
  logEvery: string;
  metricsPort?: string;
  metricsHost?: string;
  charts: boolean;
}

/** Adds `--plain`, `--log-every`, `--metrics-port` and `--no-charts` (for `single` and `coordinator`). */
export function addViewFlags(cmd: Command): Command {
  return cmd
    .option('--plain', 'log lines instead of the terminal dashboard (the default when stdout is not a terminal)')
    .option('--log-every <n>', 'plain mode: a step line every N steps', '10')
    .addOption(new Option('--metrics-port <port>', 'also serve /metrics, /healthz and /readyz on this port'))
    .addOption(new Option('--metrics-host <host>', "interface of the --metrics-port server (default: the coordinator's --listen host)"))
    .option('--no-charts', 'do not write the PNG charts at the end of the run');
}

export interface RunViewsOptions {
  /** The command showing the run, named if @dptrain/dashboard is missing. Default 'run'. */
  command?: string;
  /** Run directory: the JSON log goes to `<runDir>/run.log.jsonl`, the charts next to report.json. */
  runDir: string;
  /** Log lines instead of the dashboard. Default: false (the dashboard when stdout is a TTY). */
  plain?: boolean;
  /** Plain mode: a step line every N steps. Default 10. */
  logEvery?: number;
  /** Where the dashboard or lines go. Default: process.stdout. */
  stdout?: NodeJS.WriteStream;
  /** Text in the dashboard header (e.g. the coordinator URL). Default: none. */
  title?: string;
  /** Workers needed for /readyz. Default 1. */
  minWorkers?: number;
  /** Serve metrics on a port of their own as well. Default: no standalone server. */
  metricsPort?: number;
  /** Interface of the `metricsPort` server (the CLI passes the coordinator's host). Default '127.0.0.1'. */
  metricsHost?: string;
  /** Write the PNG charts at the end. Default true. */
  charts?: boolean;
  /** Write the JSON log. Default true. */
  jsonLog?: boolean;
}

export interface RunViews {
  mode: 'dashboard' | 'plain';
  metrics: RunMetrics;
  /** Mount on the coordinator's HTTP server (`httpHandlers`). */
  httpHandler: ObservabilityHandler;
  /** Informational line that must not tear the dashboard (goes through the bus as a `log` event when it is shown). */
  say(line: string): void;
  /** End of the run: closes the view, writes the charts, prints the summary, closes the logs. */
  finish(): Promise<void>;
  /** Tears everything down without charts or summary (after a failure). Idempotent. */
  close(): Promise<void>;
}

/**
 * Everything a run shows: the ink dashboard on a terminal (or plain lines with `--plain` / a non-TTY stdout),
 * the pino JSON log in the run directory, Prometheus metrics, and at the end the charts and a summary.
 */
export async function attachRunViews(bus: EventBus, options: RunViewsOptions): Promise<RunViews> {
  const views = await loadDashboard(options.command ?? 'run');
  const { attachJsonLog, attachPlainLogger, createRunMetrics, formatRunSummary, observabilityHandler, RUN_LOG_FILE } = views;
  const { startDashboard, startMetricsServer, writeRunChartsFromDir } = views;
  const stdout = options.stdout ?? process.stdout;
  const dashboardWanted = !options.plain && Boolean(stdout.isTTY);
  const every = options.logEvery ?? 10;
  const metrics = createRunMetrics(bus, { minWorkers: options.minWorkers ?? 1 });
  const httpHandler = observabilityHandler(metrics);
  let jsonLog: JsonLogHandle | undefined;
  if (options.jsonLog ?? true) jsonLog = attachJsonLog(bus, path.join(options.runDir, RUN_LOG_FILE));
  let metricsServer: MetricsServer | undefined;
  if (options.metricsPort !== undefined)
    metricsServer = await startMetricsServer({ metrics, port: options.metricsPort, host: options.metricsHost ?? '127.0.0.1' });

  let plain: PlainLoggerHandle | undefined;
  let dashboard: DashboardHandle | undefined;
  let finishing = false;
  const startPlain = (initialState?: DashboardState): void => {
    plain ??= attachPlainLogger(bus, { every, stream: stdout, ...(initialState ? { initialState } : {}) });
  };
  if (dashboardWanted) {
    dashboard = startDashboard(bus, {
      stdout,
      ...(options.title ? { title: options.title } : {}),
      onClose: () => {
        if (finishing) return;
        // q closes the view, not the run: carry on with lines
        stdout.write('dashboard closed; the run goes on (Ctrl+C stops it)\n');
        startPlain(dashboard?.store.getState());
      },
    });
  } else {
    startPlain();
  }

  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    finishing = true;
    dashboard?.close();
    plain?.close();
    metrics.close();
    jsonLog?.close();
    await metricsServer?.close();
  };

  return {
    mode: dashboard ? 'dashboard' : 'plain',
    metrics,
    httpHandler,
    say(line: string) {
      if (dashboard && !finishing && !plain) bus.emit({ type: 'log', time: Date.now(), level: 'info', message: line });
      else process.stderr.write(`${line}\n`);
    },
    async finish() {
      finishing = true;
      if (dashboard) {
        // let the last frame (run completed) draw before the view lets go of the terminal
        await new Promise((r) => setTimeout(r, 150));
        dashboard.close();
      }
      let charts: string[] = [];
      if (options.charts ?? true) {
        try {
          charts = await writeRunChartsFromDir(options.runDir);
        } catch (err) {
          process.stderr.write(`charts: ${(err as Error).message}\n`);
        }
      }
      try {
        const report = JSON.parse(await fs.readFile(path.join(options.runDir, 'report.json'), 'utf8')) as SummaryInput;
        stdout.write(
          `\n${formatRunSummary(
            report,
            charts.map((c) => (path.relative(process.cwd(), c).startsWith('..') ? c : path.relative(process.cwd(), c))),
          )}\n`,
        );
      } catch {
        if (charts.length) stdout.write(`charts: ${charts.join(', ')}\n`);
      }
      await close();
    },
    close,
  };
}
