import type { Command } from 'commander';
import { EventBus, isDptrainError, type RunEvent } from '@dptrain/core';
import { connectObserver } from '@dptrain/client';
import { resolveSharedToken } from '@dptrain/coordinator';
import { loadDashboard } from '../load-dashboard.js';

interface DashboardFlags {
  connect: string;
  token?: string;
  tokenFile?: string;
  ca?: string;
  plain?: boolean;
  logEvery: string;
  waitFor: string;
}

/** Retries `connect` while the coordinator is not up yet (connection refused), up to `ms`; a refused token fails at once. */
async function retry<T>(ms: number, connect: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  let delay = 250;
  for (;;) {
    try {
      return await connect();
    } catch (err) {
      if (isDptrainError(err, 'E_AUTH') || isDptrainError(err, 'E_AUTH_COORDINATOR') || Date.now() - t0 + delay > ms) throw err;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(2000, delay * 2);
    }
  }
}

/** `dptrain dashboard --connect ws://HOST:PORT`: a read-only view of a running coordinator, from any terminal. */
export function register(program: Command): void {
  program
    .command('dashboard')
    .description('watch a running coordinator (read-only): the terminal dashboard, or lines with --plain')
    .requiredOption('--connect <url>', 'coordinator URL, ws://HOST:PORT or wss://HOST:PORT')
    .option('--token <secret>', 'shared secret (default: $DPTRAIN_TOKEN); shows in ps, prefer --token-file')
    .option('--token-file <file>', 'read the shared secret from this file')
    .option('--ca <file>', 'PEM CA certificate to trust for wss://')
    .option('--plain', 'log lines instead of the dashboard (the default when stdout is not a terminal)')
    .option('--log-every <n>', 'plain mode: a step line every N steps', '10')
    .option('--wait-for <seconds>', 'keep trying to reach a coordinator that is not up yet for this long', '30')
    .action(async (flags: DashboardFlags) => {
      const token = resolveSharedToken(flags);
      const { attachPlainLogger, ReplayFilter, startDashboard } = await loadDashboard('dashboard');
      const bus = new EventBus();
      const replay = new ReplayFilter();
      let completed = false;
      let connections = 0;
      const useDashboard = !flags.plain && Boolean(process.stdout.isTTY);
      const note = (message: string): void => {
        if (useDashboard) bus.emit({ type: 'log', time: Date.now(), level: 'warn', message });
        else process.stderr.write(`${message}\n`);
      };
      let stopping = false;
      let resolveDone: () => void = () => undefined;
      const done = new Promise<void>((r) => (resolveDone = r));
      const finish = (): void => {
        stopping = true;
        resolveDone();
      };
      // The view (or the line logger) listens before the connection opens: the coordinator sends its history
      // right after accepting us, and those events must not reach the bus before anyone listens to it.
      const view = useDashboard ? startDashboard(bus, { title: flags.connect, onInterrupt: finish }) : undefined;
      const log = useDashboard ? undefined : attachPlainLogger(bus, { every: Number(flags.logEvery) || 10 });
      const closeOutput = (): void => {
        view?.close();
        log?.close();
      };
      let observer: Awaited<ReturnType<typeof connectObserver>>;
      try {
        observer = await retry(Number(flags.waitFor) * 1000, () =>
          connectObserver({
            url: flags.connect,
            token,
            ...(flags.ca ? { ca: flags.ca } : {}),
            onEvent: (e: RunEvent) => {
              if (!replay.accept(e)) return;
              if (e.type === 'run_completed') completed = true;
              bus.emit(e);
            },
            onStatus: (status, detail) => {
              if (status === 'connected') {
                if (connections++ > 0) {
                  replay.reconnected();
                  note(`reconnected to ${flags.connect}`);
                }
              } else if (stopping) {
                // closing on our own
              } else if (completed) {
                // the run is over and the coordinator has gone: nothing more will come
                finish();
              } else {
                note(`connection to ${flags.connect} lost${detail ? ` (${detail})` : ''}; reconnecting`);
              }
            },
          }),
        );
      } catch (err) {
        closeOutput();
        throw err;
      }
      observer.closed.then(finish, finish);
      if (view) {
        view.closed.then(finish, finish);
        await done;
      } else {
        const stop = (): void => finish();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        await done;
      }
      closeOutput();
      observer.close();
      // the socket library may hold the loop for a moment after close
      setTimeout(() => process.exit(process.exitCode ?? 0), 200).unref();
    });
}
