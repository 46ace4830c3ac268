import type { PhaseName } from '@dptrain/core';
import type { Peer } from './peer.js';

/** What a newly joined worker must receive: the state of the run. */
export interface RunState {
  /** Steps done in the current phase's run (the welcome's `step`). */
  step: number;
  /** Phase of the run (null before the first). */
  phase: PhaseName | null;
  /** Current trainable weights (null before the first phase is set up). */
  weights: Float32Array | null;
  /** Version of those weights, raised at every phase switch and every broadcast. */
  version: number;
}

/** What one worker's replica holds. */
interface Held {
  /** Phase its replica is in (null before any). */
  phase: string | null;
  /** Version of the trainable weights it holds (-1: none). */
  version: number;
}

/**
 * The run and sync state, owned by the ClusterExecutor: the run's step, phase, weights and their version, and
 * which phase and weights version each worker holds. The server only reads `state` (for the welcome and
 * `GET /status`); the executor alone changes it.
 */
export class RunSync {
  readonly state: RunState;
  private readonly held = new WeakMap<Peer, Held>();

  /**
   * `after`: the version of the weights the workers may already hold (the run state of an executor that had the
   * server before this one); versions go on from there, so a worker never takes a new version for one it has.
   * Default -1 (none).
   */
  constructor(after = -1) {
    this.state = { step: 0, phase: null, weights: null, version: after };
  }

  /** A worker was just welcomed with `state`: it holds the phase, and the weights when there were any. */
  welcomed(peer: Peer): void {
    const s = this.state;
    this.held.set(peer, { phase: s.phase, version: s.phase && s.weights ? s.version : -1 });
  }

  /** The worker now holds the current phase and weights. */
  synced(peer: Peer): void {
    this.held.set(peer, { phase: this.state.phase, version: this.state.version });
  }

  /** Is the worker's replica in the current phase? */
  inPhase(peer: Peer): boolean {
    return this.held.get(peer)?.phase === this.state.phase;
  }

  /** Does the worker hold the current weights? */
  upToDate(peer: Peer): boolean {
    return this.held.get(peer)?.version === this.state.version;
  }

  /** Starts phase `phase`: no weights until its leader answers. */
  beginPhase(phase: PhaseName): void {
    this.state.phase = phase;
    this.state.weights = null;
    this.state.version++;
  }

  /** The weights the phase starts from (its leader's, or the ones given): the phase's version. */
  setPhaseWeights(weights: Float32Array): void {
    this.state.weights = weights;
  }

  /** New trainable weights: a new version (the next one, or `version`: an agent keeps its coordinator's numbering). */
  setWeights(weights: Float32Array, version = this.state.version + 1): void {
    this.state.weights = weights;
    this.state.version = version;
  }

  /** Step `step` (0-based) is done: a joiner is welcomed at the next one. */
  stepDone(step: number): void {
    this.state.step = step + 1;
  }
}
