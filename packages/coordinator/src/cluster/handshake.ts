import {
  DptrainError,
  NONCE_BYTES,
  coordinatorProof,
  createNonce,
  verifyAuthResponse,
  type Message,
  type ResolvedProtocolOptions,
  type RunConfig,
} from '@dptrain/core';
import { checkJoinCapacity } from './join-capacity.js';
import { checkJoinPrecision } from './join-precision.js';
import type { LivenessLinks } from './liveness.js';
import type { ObserverHub } from './observers.js';
import type { Peer } from './peer.js';
import type { RunState } from './run-sync.js';

/** What the handshake needs from the server around it. */
export interface HandshakeContext {
  /** The shared secret of the challenge-response. */
  token: string;
  /** The run configuration every worker is accepted with. */
  config: RunConfig;
  options: ResolvedProtocolOptions;
  liveness: LivenessLinks;
  observers: ObserverHub;
  /** The run's state, for a joiner's welcome. */
  runState(): Readonly<RunState>;
  /** `peer` passed the challenge: no longer counted against the admission caps, and the large frame limit applies. */
  authenticated(peer: Peer): void;
  /** `peer` joined and was welcomed: a worker of the run from now on. */
  joined(peer: Peer): void;
  /** `peer` was accepted as a shard of the sharded summation service. */
  shardJoined(peer: Peer): void;
}

/**
 * The connection handshake (states hello → auth → join): the client's hello and nonce, the challenge, the
 * check of its HMAC and the coordinator's proof, then, for a worker, the join checks (base and data-set hashes,
 * precision, batch capacity) and the welcome. Owns the reference hashes and the worker ids.
 */
export class Handshake {
  private baseHash: string | undefined;
  private baseSource = 'given to the coordinator';
  private datasetHash: string | undefined;
  private workerSeq = 0;
  private shardSeq = 0;

  constructor(
    private readonly ctx: HandshakeContext,
    hashes: { baseHash?: string; datasetHash?: string } = {},
  ) {
    this.baseHash = hashes.baseHash;
    this.datasetHash = hashes.datasetHash;
  }

  /** Hashes every worker must match (the base hash is set by the server's `listen()`). */
  get referenceHashes(): { baseHash?: string; datasetHash?: string } {
    return { baseHash: this.baseHash, datasetHash: this.datasetHash };
  }

  get hasBaseHash(): boolean {
    return this.baseHash !== undefined;
  }

  /** The base hash computed from the coordinator's own copy; `source` says where its weights came from. */
  setBaseHash(hash: string, source: string): void {
    this.baseHash = hash;
    this.baseSource = source;
  }

  /** Handles a message of a peer still in the handshake (state hello, auth or join); throws to reject it. */
  onMessage(peer: Peer, msg: Message): void {
    if (peer.state === 'hello') this.hello(peer, msg);
    else if (peer.state === 'auth') this.auth(peer, msg);
    else if (peer.state === 'join') this.join(peer, msg);
  }

  private hello(peer: Peer, msg: Message): void {
    if (msg.type !== 'hello') throw new DptrainError('E_PROTOCOL_SCHEMA', `connection ${peer.id}: expected 'hello', got '${msg.type}'`);
    if (msg.nonce.length !== NONCE_BYTES)
      throw new DptrainError('E_AUTH', `connection ${peer.id}: hello nonce of ${msg.nonce.length} bytes (expected ${NONCE_BYTES})`);
    peer.role = msg.role;
    peer.clientNonce = msg.nonce;
    peer.nonce = createNonce();
    peer.state = 'auth';
    peer.send({ type: 'challenge', nonce: peer.nonce });
  }

  private auth(peer: Peer, msg: Message): void {
    const { token } = this.ctx;
    if (msg.type !== 'auth') throw new DptrainError('E_PROTOCOL_SCHEMA', `connection ${peer.id}: expected 'auth', got '${msg.type}'`);
    if (!verifyAuthResponse(token, peer.nonce!, peer.role!, peer.clientNonce!, msg.mac)) {
      throw new DptrainError('E_AUTH', `connection ${peer.id} (${peer.role}): bad token`);
    }
    this.ctx.authenticated(peer);
    const proof = coordinatorProof(token, peer.nonce!, peer.role!, peer.clientNonce!);
    if (peer.role === 'liveness') {
      this.ctx.liveness.accept(peer, proof);
    } else if (peer.role === 'observer') {
      this.ctx.observers.add(peer, proof);
    } else if (peer.role === 'shard') {
      peer.state = 'shard';
      peer.id = `s${++this.shardSeq}`;
      peer.send({ type: 'accepted', role: 'shard', workerId: peer.id, config: this.ctx.config, proof });
      this.ctx.shardJoined(peer);
    } else if (peer.role === 'sender') {
      throw new DptrainError('E_AUTH', `connection ${peer.id}: senders connect to shards, not to the coordinator`);
    } else {
      peer.state = 'join';
      peer.id = `w${++this.workerSeq}`;
      peer.send({ type: 'accepted', role: 'worker', workerId: peer.id, config: this.ctx.config, proof, livenessKey: this.ctx.liveness.issue(peer.id) });
    }
  }

  private join(peer: Peer, msg: Message): void {
    if (msg.type !== 'join') throw new DptrainError('E_PROTOCOL_SCHEMA', `worker ${peer.id}: expected 'join', got '${msg.type}'`);
    if (msg.baseHash !== this.baseHash) {
      throw new DptrainError(
        'E_BASE_HASH',
        `worker ${peer.id} (${msg.host}): frozen base hash ${msg.baseHash} differs from the reference ${this.baseHash}, ${this.baseSource}: every machine needs the same base weights`,
      );
    }
    this.datasetHash ??= msg.datasetHash;
    if (msg.datasetHash !== this.datasetHash) {
      throw new DptrainError(
        'E_DATASET_HASH',
        `worker ${peer.id} (${msg.host}): data set hash ${msg.datasetHash} differs from the reference ${this.datasetHash}`,
      );
    }
    checkJoinPrecision(this.ctx.config.precision, peer.id, msg);
    checkJoinCapacity(this.ctx.config.microBatch, `worker ${peer.id} (${msg.host})`, msg.batchCapacity);
    peer.info = {
      id: peer.id,
      host: msg.host,
      backend: msg.backend,
      device: msg.device,
      batchCapacity: msg.batchCapacity,
      ...(msg.localWorkers !== undefined ? { localWorkers: msg.localWorkers } : {}),
      ...(msg.gpu ? { gpu: msg.gpu } : {}),
      ...(msg.precision ? { precision: msg.precision } : {}),
    };
    peer.state = 'joined';
    const s = this.ctx.runState();
    peer.send({ type: 'welcome', workerId: peer.id, step: s.step, phase: s.phase, weights: s.phase ? s.weights : null });
    this.ctx.joined(peer);
  }
}
