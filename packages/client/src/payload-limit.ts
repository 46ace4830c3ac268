import type { WebSocket } from 'ws';

interface ReceiverLimit {
  _maxPayload?: unknown;
}

/**
 * Sets the largest message a WebSocket accepts from now on, in bytes. ws fixes a connection's `maxPayload` when
 * the connection is created and checks it against each frame header as it arrives (before buffering the payload),
 * so a socket created with a small pre-authentication limit refuses a huge unauthenticated frame after reading a
 * few bytes; this raises the limit once the other side has authenticated (the coordinator's server after `auth`,
 * a client after the coordinator's proof). ws has no public setter: the receiver's field
 * is set directly, and a ws release without it fails loudly here instead of silently keeping either limit.
 */
export function setMaxPayload(ws: WebSocket, bytes: number): void {
  const receiver = (ws as unknown as { _receiver?: ReceiverLimit | null })._receiver;
  if (!receiver || typeof receiver._maxPayload !== 'number') {
    throw new Error('internal error: this ws release has no per-connection payload limit to set (ws receiver._maxPayload)');
  }
  receiver._maxPayload = bytes;
}

/** The largest message the WebSocket accepts now, in bytes (0: unlimited). */
export function maxPayloadOf(ws: WebSocket): number {
  const receiver = (ws as unknown as { _receiver?: ReceiverLimit | null })._receiver;
  return typeof receiver?._maxPayload === 'number' ? receiver._maxPayload : 0;
}
