import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import {
  DptrainError,
  closeCodeFor,
  NONCE_BYTES,
  coordinatorProof,
  createNonce,
  decodeMessage,
  encodeMessage,
  verifyAuthResponse,
  type Message,
  type Outgoing,
  type ResolvedProtocolOptions,
} from '@dptrain/core';
import { setMaxPayload } from '@dptrain/client';

export interface SenderServerOptions {
  /** Shared secret of the run (senders prove they know it, and so does the shard). */
  token: string;
  /** Interface to listen on. */
  host: string;
  /** Port; 0 picks a free one. */
  port: number;
  /** PEM certificate and key files: serve wss:// (the coordinator's TLS options). Default: plain ws. */
  tls?: { cert: string; key: string } | undefined;
  /** Frame limits and the authentication timeout (the coordinator's protocol options). */
  protocol: ResolvedProtocolOptions;
  /** A message from an authenticated sender (its worker id as it said in its hello). */
  onMessage: (sender: string, msg: Message) => void;
  /** A sender's frame could not be used (logged by the shard). */
  onRefused: (sender: string, err: Error) => void;
}

interface Link {
  ws: WebSocket;
  sender: string;
  state: 'hello' | 'auth' | 'open';
  nonce?: Uint8Array;
  clientNonce?: Uint8Array;
}

/**
 * A shard's server for senders (workers or agents): the same mutual challenge-response as the coordinator's, under
 * the role `sender`, and the same frame limits (the pre-authentication one until the sender's proof checks out).
 * One authenticated connection per sender id (a newer one replaces an older one).
 */
export class SenderServer {
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly open = new Map<string, Link>();

  constructor(private readonly opts: SenderServerOptions) {
    this.http = opts.tls ? createHttpsServer({ cert: readFileSync(opts.tls.cert), key: readFileSync(opts.tls.key) }) : createHttpServer();
    this.http.on('request', (_req, res) => res.writeHead(404).end());
    this.wss = new WebSocketServer({
      server: this.http,
      maxPayload: Math.min(opts.protocol.preAuthMaxPayload, opts.protocol.maxPayload),
      perMessageDeflate: false,
      // browsers always send an Origin; dptrain's clients never do
      verifyClient: (info: { origin?: string }) => !info.origin,
    });
    this.wss.on('connection', (ws) => this.onConnection(ws));
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this.opts.port, this.opts.host, () => {
        this.http.off('error', reject);
        resolve();
      });
    });
    const a = this.http.address() as AddressInfo;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return `${this.opts.tls ? 'wss' : 'ws'}://${host}:${a.port}`;
  }

  /** Sends one frame to every authenticated sender; returns their ids. */
  broadcast(message: Outgoing): string[] {
    const frame = encodeMessage(message);
    const sent: string[] = [];
    for (const [id, link] of this.open) {
      if (link.ws.readyState !== link.ws.OPEN) continue;
      link.ws.send(frame);
      sent.push(id);
    }
    return sent;
  }

  async close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeAllConnections?.();
  }

  private onConnection(ws: WebSocket): void {
    const link: Link = { ws, sender: '?', state: 'hello' };
    ws.binaryType = 'fragments';
    const timer = setTimeout(() => {
      if (link.state !== 'open') this.refuse(link, new DptrainError('E_AUTH', `sender: no authentication within ${this.opts.protocol.authTimeoutMs} ms`));
    }, this.opts.protocol.authTimeoutMs);
    timer.unref();
    ws.on('message', (data: RawData, isBinary: boolean) => {
      try {
        if (!isBinary) throw new DptrainError('E_PROTOCOL_DECODE', 'text frame; the protocol is binary msgpack');
        const limit = link.state === 'open' ? this.opts.protocol.maxPayload : this.opts.protocol.preAuthMaxPayload;
        this.onFrame(link, decodeMessage(data as Buffer[], limit));
      } catch (err) {
        this.refuse(link, err as Error);
      }
    });
    ws.on('error', () => ws.terminate());
    ws.on('close', () => {
      clearTimeout(timer);
      if (this.open.get(link.sender) === link) this.open.delete(link.sender);
    });
  }

  private onFrame(link: Link, msg: Message): void {
    if (msg.type === 'heartbeat') return;
    if (link.state === 'hello') {
      if (msg.type !== 'hello' || msg.role !== 'sender' || !msg.name)
        throw new DptrainError('E_PROTOCOL_SCHEMA', `expected a sender's 'hello' with its worker id, got '${msg.type}'`);
      if (msg.nonce.length !== NONCE_BYTES) throw new DptrainError('E_AUTH', `hello nonce of ${msg.nonce.length} bytes (expected ${NONCE_BYTES})`);
      link.sender = msg.name;
      link.clientNonce = msg.nonce;
      link.nonce = createNonce();
      link.state = 'auth';
      link.ws.send(encodeMessage({ type: 'challenge', nonce: link.nonce }));
      return;
    }
    if (link.state === 'auth') {
      if (msg.type !== 'auth') throw new DptrainError('E_PROTOCOL_SCHEMA', `sender ${link.sender}: expected 'auth', got '${msg.type}'`);
      if (!verifyAuthResponse(this.opts.token, link.nonce!, 'sender', link.clientNonce!, msg.mac)) {
        throw new DptrainError('E_AUTH', `sender ${link.sender}: bad token`);
      }
      setMaxPayload(link.ws, this.opts.protocol.maxPayload);
      link.state = 'open';
      this.open.get(link.sender)?.ws.terminate();
      this.open.set(link.sender, link);
      link.ws.send(encodeMessage({ type: 'accepted', role: 'sender', proof: coordinatorProof(this.opts.token, link.nonce!, 'sender', link.clientNonce!) }));
      return;
    }
    this.opts.onMessage(link.sender, msg);
  }

  private refuse(link: Link, err: Error): void {
    this.opts.onRefused(link.sender, err);
    try {
      link.ws.send(encodeMessage({ type: 'error', code: err instanceof DptrainError ? err.code : 'E_PROTOCOL_SCHEMA', message: err.message.slice(0, 4000) }));
    } catch {
      // gone already
    }
    link.ws.close(closeCodeFor(err instanceof DptrainError ? err.code : 'E_PROTOCOL_SCHEMA'), err instanceof DptrainError ? `${err.code}: refused` : 'refused');
  }
}
