import type { RunEvent } from '@dptrain/core';
import { CLOSE_CODES } from '@dptrain/core/protocol';
import { Backoff } from './backoff.js';
import { connectAndAuth } from './connect.js';

export interface ObserverOptions {
  /** ws:// or wss:// URL of the coordinator. */
  url: string;
  /** Shared secret (DPTRAIN_TOKEN). */
  token: string;
  /** Called for each event: first the coordinator's history, then each new one as it happens. */
  onEvent: (event: RunEvent) => void;
  /** PEM CA file for wss://. Default: system CAs. */
  ca?: string;
  /** Reconnect after a lost connection (the history is replayed again). Default true. */
  reconnect?: boolean;
  /** Called when a connection is (re)established or lost. Default: none. */
  onStatus?: (status: 'connected' | 'disconnected', detail?: string) => void;
}

export interface ObserverConnection {
  /** Resolves when the observer is closed (by `close()`, or a refused token). */
  closed: Promise<void>;
  close(): void;
}

/**
 * A read-only connection that receives every RunEvent of a running coordinator (for `dptrain dashboard --connect`).
 * Resolves once the first connection is authenticated; rejects with E_AUTH on a bad token.
 */
export async function connectObserver(opts: ObserverOptions): Promise<ObserverConnection> {
  const backoff = new Backoff();
  let stopped = false;
  let current: import('ws').WebSocket | undefined;
  let finish: () => void = () => undefined;
  const closed = new Promise<void>((r) => (finish = r));

  const open = async (): Promise<void> => {
    const conn = await connectAndAuth({ url: opts.url, token: opts.token, role: 'observer', ...(opts.ca ? { ca: opts.ca } : {}) });
    current = conn.ws;
    backoff.reset();
    opts.onStatus?.('connected');
    conn.onMessage(
      (msg) => {
        if (msg.type === 'events') for (const e of msg.events) opts.onEvent(e as unknown as RunEvent);
        else if (msg.type === 'heartbeat') conn.send({ type: 'heartbeat', time: Date.now() });
      },
      () => conn.ws.terminate(),
    );
    conn.ws.on('close', (_code, reason) => {
      opts.onStatus?.('disconnected', reason.toString());
      if (stopped || opts.reconnect === false) {
        finish();
        return;
      }
      const retry = (): void => {
        if (stopped) return;
        open().catch(() => setTimeout(retry, backoff.next()));
      };
      setTimeout(retry, backoff.next());
    });
  };

  await open();
  return {
    closed,
    close: () => {
      stopped = true;
      current?.close(CLOSE_CODES.normal, 'observer closed');
      finish();
    },
  };
}
