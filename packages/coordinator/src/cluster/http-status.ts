import type { IncomingMessage, ServerResponse } from 'node:http';

/** An extra HTTP route on the coordinator's server (e.g. /metrics). Return true when the request was handled. */
export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>;

/**
 * The coordinator's HTTP side: the extra routes in order, then `GET /status` (and `/`) with `status()` as JSON,
 * else 404. A route that throws answers 500 with its message.
 */
export function httpStatusListener(routes: readonly HttpHandler[], status: () => unknown): (req: IncomingMessage, res: ServerResponse) => void {
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    try {
      for (const h of routes) if (await h(req, res)) return;
      if (req.method === 'GET' && (req.url === '/status' || req.url === '/')) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(status()));
        return;
      }
      res.writeHead(404).end();
    } catch (err) {
      if (!res.headersSent) res.writeHead(500);
      res.end(String((err as Error).message));
    }
  };
  return (req, res) => void handle(req, res);
}
