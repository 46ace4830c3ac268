import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
// the protocol and error modules only (not the whole core, with tfjs): the liveness thread loads this file too
import { DptrainError } from '@dptrain/core/errors';
import {
  CLOSE_CODES,
  authResponse,
  createNonce,
  decodeMessage,
  sendMessage,
  verifyCoordinatorProof,
  type BlobDestination,
  type ClientRole,
  type Message,
  type MessageOf,
  type Outgoing,
} from '@dptrain/core/protocol';
import { setMaxPayload } from './payload-limit.js';

export interface ConnectOptions {
  /** ws:// or wss:// URL of the coordinator. */
  url: string;
  /** Shared secret (never sent; used to answer the challenge). */
  token: string;
  role: ClientRole;
  /** Name sent in the hello (a sender's worker id, for the shard). Default: none. */
  name?: string;
  /** PEM CA file trusted for wss:// (self-signed coordinator certificates). Default: the system CAs. */
  ca?: string;
  /** Largest frame accepted from the coordinator once it has proved it knows the token, in bytes. Default 512 MiB. */
  maxPayload?: number;
  /** Largest frame accepted before that (challenge, accepted with the run config), in bytes. Default 1 MiB. */
  preAuthMaxPayload?: number;
  /** Time allowed for connect + challenge-response, in ms. Default 10000. */
  timeoutMs?: number;
}

/** An authenticated connection: the socket and the coordinator's `accepted` message. */
export interface AuthedConnection {
  ws: WebSocket;
  accepted: MessageOf<'accepted'>;
  send(message: Outgoing): void;
  /**
   * Receives every later message (decoded and checked) with the fragments it arrived in, starting with any that
   * arrived before the call. `into`: where the large arrays of the frames that arrive after the call are decoded to
   * (codec's BlobDestination; default: views of the frame, or fresh copies).
   */
  onMessage(handler: (msg: Message, frame: Buffer[]) => void, onBadFrame: (err: Error) => void, into?: BlobDestination): void;
}

/**
 * Opens a WebSocket to the coordinator and completes the mutual challenge-response: hello (with a nonce of ours) →
 * challenge → auth → accepted, whose proof must show that the coordinator knows the token too. Rejects with E_AUTH
 * on a bad token, and with E_AUTH_COORDINATOR when the coordinator's proof is missing or wrong (nothing it sent is used).
 */
export function connectAndAuth(opts: ConnectOptions): Promise<AuthedConnection> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(opts.url, {
      // small until the coordinator's proof checks out, so a rogue one cannot make us buffer a huge frame
      maxPayload: Math.min(opts.preAuthMaxPayload ?? 1024 * 1024, opts.maxPayload ?? 512 * 1024 * 1024),
      perMessageDeflate: false,
      // All-zero masking key: ws then skips the byte-wise XOR of 37 MB gradient frames on both ends. Masking
      // protects browsers' intermediaries from cache poisoning; this binary client is not a browser.
      generateMask: (mask: Buffer) => void mask.fill(0),
      ...(opts.ca ? { ca: readFileSync(opts.ca) } : {}),
    });
    // Received messages arrive as their fragments (gradients/weights blobs are then views, not reassembled copies);
    // sent ones go out as fragments whose large arrays are written from memory (zero-copy).
    ws.binaryType = 'fragments';
    const send = (m: Outgoing) => sendMessage(ws, m);
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.removeAllListeners('message');
      ws.terminate();
      reject(err);
    };
    const timer = setTimeout(
      () => fail(new DptrainError('E_TIMEOUT', `no authentication from ${opts.url} within ${opts.timeoutMs ?? 10_000} ms`)),
      opts.timeoutMs ?? 10_000,
    );
    ws.on('error', (err) => fail(err));
    ws.on('close', (code, reason) => {
      const r = reason.toString();
      fail(
        r.startsWith('E_AUTH') || code === CLOSE_CODES.policyViolation
          ? new DptrainError(r.startsWith('E_') ? (r.split(':')[0] as 'E_AUTH') : 'E_AUTH', `coordinator refused the connection: ${r || code}`)
          : new Error(`connection closed (${code}) ${r}`),
      );
    });
    const clientNonce = createNonce();
    let serverNonce: Uint8Array | undefined;
    ws.on('open', () => send({ type: 'hello', role: opts.role, nonce: clientNonce, ...(opts.name ? { name: opts.name } : {}) }));
    const backlog: [Message, Buffer[]][] = [];
    let handler: ((msg: Message, frame: Buffer[]) => void) | undefined;
    let onBad: ((err: Error) => void) | undefined;
    let into: BlobDestination | undefined;
    ws.on('message', (data) => {
      let msg: Message;
      try {
        msg = decodeMessage(data as Buffer[], opts.maxPayload, settled ? into : undefined);
      } catch (err) {
        if (settled && onBad) onBad(err as Error);
        else fail(err as Error);
        return;
      }
      if (settled) {
        const frame = data as Buffer[];
        if (handler) handler(msg, frame);
        else backlog.push([msg, frame]);
        return;
      }
      if (msg.type === 'challenge' && !serverNonce) {
        serverNonce = msg.nonce;
        send({ type: 'auth', mac: authResponse(opts.token, msg.nonce, opts.role, clientNonce) });
      } else if (msg.type === 'accepted') {
        if (!serverNonce || !verifyCoordinatorProof(opts.token, serverNonce, opts.role, clientNonce, msg.proof)) {
          fail(
            new DptrainError(
              'E_AUTH_COORDINATOR',
              `${opts.url} could not prove that it knows the token (${msg.proof ? 'wrong' : 'no'} proof in its 'accepted'): not a dptrain coordinator of this run, or another token; refusing its config`,
            ),
          );
          return;
        }
        setMaxPayload(ws, opts.maxPayload ?? 512 * 1024 * 1024);
        settled = true;
        clearTimeout(timer);
        ws.removeAllListeners('close');
        ws.removeAllListeners('error');
        ws.on('error', () => undefined); // the owner listens to 'close'
        resolve({
          ws,
          accepted: msg,
          send,
          onMessage: (h, bad, destination) => {
            handler = h;
            onBad = bad;
            into = destination;
            for (const [m, f] of backlog.splice(0)) h(m, f);
          },
        });
      } else if (msg.type === 'error') {
        fail(new DptrainError(msg.code as 'E_AUTH', `coordinator refused the connection: ${msg.message}`));
      }
    });
  });
}
