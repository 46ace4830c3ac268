// @dptrain/client: the client side of the wire, shared by the worker and the remote dashboard.
export { Backoff, type BackoffOptions } from './backoff.js';
export { connectAndAuth, type AuthedConnection, type ConnectOptions } from './connect.js';
export { connectObserver, type ObserverConnection, type ObserverOptions } from './observer.js';
export { maxPayloadOf, setMaxPayload } from './payload-limit.js';
