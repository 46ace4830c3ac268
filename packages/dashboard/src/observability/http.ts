import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RunMetrics } from './metrics.js';

/**
 * A request handler for `/metrics`, `/healthz` and `/readyz`. Returns true when it answered the request,
 * false when the path is not one of its own (so a server can chain it with other routes).
 */
export type ObservabilityHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

/** Paths served by `observabilityHandler`. */
export const OBSERVABILITY_PATHS = ['/metrics', '/healthz', '/readyz'] as const;

export function observabilityHandler(metrics: RunMetrics): ObservabilityHandler {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (!OBSERVABILITY_PATHS.includes(path as (typeof OBSERVABILITY_PATHS)[number])) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' });
      res.end('method not allowed\n');
      return true;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
      return true;
    }
    if (path === '/readyz') {
      const r = metrics.readiness();
      res.writeHead(r.ready ? 200 : 503, { 'content-type': 'application/json' });
      res.end(`${JSON.stringify(r)}\n`);
      return true;
    }
    metrics.registry.metrics().then(
      (body) => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`metrics failed: ${String(err)}\n`);
      },
    );
    return true;
  };
}

export interface MetricsServerOptions {
  /** The metrics to serve. */
  metrics: RunMetrics;
  /** Port (0: any free port). Default 9464. */
  port?: number;
  /** Interface to listen on. Default '127.0.0.1'. */
  host?: string;
}

export interface MetricsServer {
  server: Server;
  /** The port actually bound. */
  port: number;
  close(): Promise<void>;
}

/** Serves `/metrics`, `/healthz` and `/readyz` on a port of their own (when not mounted on the coordinator's server). */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const handle = observabilityHandler(options.metrics);
  const server = createServer((req, res) => {
    if (!handle(req, res)) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 9464, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
