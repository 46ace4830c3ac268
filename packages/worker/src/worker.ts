import { hostname } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import {
  computeTreeGradients,
  DptrainError,
  describeUnexpectedError,
  isDptrainError,
  joinDatasetIdentity,
  loadDataset,
  packGradients,
  stripControl,
  type BackendInfo,
  type Dataset,
  type Message,
  type MessageOf,
  type Outgoing,
  type Replica,
  type RunConfig,
  type Sample,
  workerPrecision,
} from '@dptrain/core';
import { Backoff, connectAndAuth, type AuthedConnection, type BackoffOptions } from '@dptrain/client';
import { LIVENESS_DEFAULTS, startLiveness } from './liveness.js';
import { blockStepForTest, slowStepForTest } from './test-hooks.js';

/** Refusals that end the worker instead of a retry. */
const FATAL_CODES: string[] = ['E_AUTH', 'E_BASE_HASH', 'E_DATASET_HASH', 'E_PROTOCOL_VERSION', 'E_AUTH_COORDINATOR', 'E_PRECISION', 'E_BATCH_CAPACITY'];

export interface WorkerOptions {
  /** ws:// or wss:// URL of the coordinator. */
  url: string;
  /** Shared secret (--token or DPTRAIN_TOKEN). */
  token: string;
  /** This worker's copy of the data (same files as the coordinator's). Default: the run config's dataDir. */
  dataDir?: string;
  /** PEM CA file trusted for wss://. Default: system CAs. */
  ca?: string;
  /** Largest per-step slice this worker accepts (reported at join). Default 64. */
  batchCapacity?: number;
  /** Heartbeat interval in ms. Default 1000. */
  heartbeatIntervalMs?: number;
  /** The coordinator is considered gone after this much silence, in ms. Default 5000. */
  lostAfterMs?: number;
  /** Reconnect delays. Default: 250 ms doubling up to 5 s. */
  backoff?: BackoffOptions;
  /** Stop retrying after this long without a connection, in ms (`--give-up-after`, in seconds). Default 120000 (2 min). */
  giveUpAfterMs?: number;
  /** After stop(): longest wait for the request in flight to settle before the replica is disposed, in ms. Default 10000. */
  stopGraceMs?: number;
  /** Host name reported at join. Default os.hostname(). */
  host?: string;
  /** The backend in use (reported at join). Default: tf.getBackend(). */
  backend?: BackendInfo;
  /**
   * Feature-cache folder shared with the other workers of this machine (or a shared mount): a sample's frozen
   * features are computed once, by whichever worker meets it first. Default: none (each worker caches in memory).
   */
  cacheDir?: string;
  /** Builds the replica for a run config. Default: core's createReplica with this worker's dataset. */
  createReplica?: (config: RunConfig, dataset: Dataset) => Promise<Replica>;
  /** Reads the data set. Default: core's loadDataset(dataDir). */
  loadDataset?: (dir: string, config: RunConfig) => Dataset | Promise<Dataset>;
  /** Progress lines. Default: stderr. */
  log?: (message: string) => void;
  /** Send heartbeats from a worker_thread over a second connection (liveness.ts). Default: true unless $DPTRAIN_LIVENESS_THREAD is 0. */
  livenessThread?: boolean;
  /** The liveness thread stops beating after the main thread made no progress for this long, in ms. Default 600000, 3600000 under a PTX JIT. */
  stallLimitMs?: number;
}

/** Why the worker stopped. */
export interface WorkerExit {
  reason: 'run_complete' | 'gave_up' | 'refused' | 'stopped';
  detail: string;
}

export interface WorkerHandle {
  /** Resolves when the worker stops for good. */
  done: Promise<WorkerExit>;
  stop(): void;
}

/**
 * A worker: connects, authenticates, builds its replica from its own data copy, joins (hashes checked by
 * the coordinator), then serves phase/step/predict/weights requests one at a time, with heartbeats.
 * It reconnects with exponential backoff when the coordinator goes away, keeping its replica.
 */
export function startWorker(opts: WorkerOptions): WorkerHandle {
  // what the coordinator sends (refusals, bye reasons) is logged without control characters
  const log = opts.log ?? ((m: string) => process.stderr.write(`dptrain worker: ${stripControl(m, { keepNewlines: true })}\n`));
  const backoff = new Backoff(opts.backoff);
  const batchCapacity = opts.batchCapacity ?? 64;
  let stopped = false;
  let currentWs: AuthedConnection['ws'] | undefined;
  let replica: Replica | undefined;
  let replicaKey = '';
  let dataset: Dataset | undefined;
  let byIndex: { labelled: Map<number, Sample>; test: Map<number, Sample> } | undefined;
  let exit: (e: WorkerExit) => void = () => undefined;
  const done = new Promise<WorkerExit>((r) => (exit = r));

  // a request being served, and how to say goodbye on the open connection (see stop)
  let inFlight: Promise<void> | undefined;
  let sayBye: ((reason: string) => void) | undefined;
  let finished = false;
  const finish = (e: WorkerExit): void => {
    if (finished) return;
    finished = true;
    stopped = true;
    replica?.dispose();
    replica = undefined;
    exit(e);
  };

  async function prepare(config: RunConfig): Promise<Replica> {
    const key = JSON.stringify(config);
    if (replica && key === replicaKey) return replica;
    replica?.dispose();
    const dir = opts.dataDir ?? config.dataDir;
    dataset = await (opts.loadDataset ?? ((d: string, c: RunConfig) => loadDataset(d, c.classNames ? { classNames: c.classNames } : {})))(dir, config);
    byIndex = { labelled: new Map(dataset.labelled.map((s) => [s.index, s])), test: new Map(dataset.test.map((s) => [s.index, s])) };
    if (opts.createReplica) replica = await opts.createReplica(config, dataset);
    else {
      const core = await import('@dptrain/core');
      replica = await core.createReplica(config, {
        dataset,
        dataDir: dir,
        // a step's micro-batch results are merged (into new arrays) or sent before the next-but-one replica call,
        // and the coordinator asks for the next step only after it received this one: two buffers in turn are safe
        gradientBuffers: 2,
        ...(opts.backend ? { backend: opts.backend } : {}),
        ...(opts.cacheDir ? { cacheDir: opts.cacheDir, cacheShared: true } : {}),
      });
    }
    replicaKey = key;
    return replica!;
  }

  function samplesOf(split: 'labelled' | 'test', indices: Uint32Array): Sample[] {
    const map = byIndex![split];
    return Array.from(indices, (i) => {
      const s = map.get(i);
      if (!s) throw new DptrainError('E_DATA_INVALID', `no ${split} sample with index ${i} in ${dataset!.root}`);
      return s;
    });
  }

  async function session(): Promise<'closed' | 'bye'> {
    const conn = await connectAndAuth({ url: opts.url, token: opts.token, role: 'worker', ...(opts.ca ? { ca: opts.ca } : {}) });
    currentWs = conn.ws;
    const { accepted } = conn;
    if (!accepted.config || !accepted.workerId) throw new DptrainError('E_PROTOCOL_SCHEMA', 'coordinator accepted without a run config');
    log(`authenticated as ${accepted.workerId}; preparing the replica`);
    const config = accepted.config;
    const queue: Message[] = [];
    let wakeQueue: () => void = () => undefined;
    let lastSeen = Date.now();
    let closed = false;
    let byeSeen = false;
    conn.onMessage(
      (msg) => {
        lastSeen = Date.now();
        if (msg.type === 'heartbeat') return;
        queue.push(msg);
        wakeQueue();
      },
      (err) => {
        log(`bad frame from the coordinator: ${err.message}`);
        conn.ws.terminate();
      },
    );
    const closedP = new Promise<void>((resolve) =>
      conn.ws.on('close', () => {
        closed = true;
        resolve();
        wakeQueue();
      }),
    );
    const interval = opts.heartbeatIntervalMs ?? 1000;
    const liveness =
      accepted.livenessKey && (opts.livenessThread ?? process.env.DPTRAIN_LIVENESS_THREAD !== '0')
        ? startLiveness({
            url: opts.url,
            token: opts.token,
            workerId: accepted.workerId,
            key: accepted.livenessKey,
            heartbeatIntervalMs: interval,
            log,
            stallLimitMs:
              opts.stallLimitMs ?? (opts.backend?.gpu?.tfjsNodeGpu === 'ptx-jit' ? LIVENESS_DEFAULTS.ptxJitStallLimitMs : LIVENESS_DEFAULTS.stallLimitMs),
            ...(opts.ca ? { ca: opts.ca } : {}),
          })
        : undefined;
    let lastTick = Date.now();
    const beat = setInterval(() => {
      const now = Date.now();
      liveness?.tick();
      // a late tick means our own event loop was busy: the silence is ours, not the coordinator's
      if (now - lastTick > 2 * interval) lastSeen = Math.max(lastSeen, now - interval);
      lastTick = now;
      if (now - lastSeen > (opts.lostAfterMs ?? 5000)) {
        log(`coordinator silent for ${now - lastSeen} ms; reconnecting`);
        conn.ws.terminate();
        return;
      }
      if (conn.ws.readyState === conn.ws.OPEN) conn.send({ type: 'heartbeat', time: now });
    }, interval);
    beat.unref?.();
    const send = (m: Outgoing): void => {
      if (conn.ws.readyState === conn.ws.OPEN) conn.send(m);
    };
    sayBye = (reason: string): void => {
      send({ type: 'bye', reason });
      conn.ws.close(1000, 'worker stopping');
    };
    try {
      // the run's precision, set before the replica computes anything (refused at join if this worker cannot)
      const precision = await workerPrecision(config.precision, opts.backend?.name, tf.getBackend());
      log('precision' in precision ? `precision ${precision.precision}` : `cannot run precision ${config.precision}: ${precision.precisionError}`);
      const r = await prepare(config);
      await liveness?.ready; // heartbeats off the main thread before any step can block it
      backoff.reset();
      const b = opts.backend;
      send({
        type: 'join',
        backend: b?.name ?? tf.getBackend() ?? 'unknown',
        device: b?.device ?? 'cpu',
        batchCapacity,
        host: opts.host ?? hostname(),
        baseHash: r.baseHash,
        datasetHash: await joinDatasetIdentity(dataset!, config),
        ...(b?.gpu ? { gpu: b.gpu } : {}),
        ...precision,
      });
      while (!closed) {
        const msg = queue.shift();
        if (!msg) {
          await new Promise<void>((res) => (wakeQueue = res));
          continue;
        }
        if (msg.type === 'error' && FATAL_CODES.includes(msg.code)) {
          // refused at join (hashes, version): retrying the same replica cannot help
          throw new DptrainError(msg.code as 'E_AUTH', `coordinator refused this worker: ${msg.message}`);
        }
        if (msg.type === 'bye') {
          byeSeen = true;
          log(`coordinator said bye: ${msg.reason}`);
          conn.ws.close(1000, 'bye');
          break;
        }
        if (stopped) break;
        const handling = handle(r, msg, send, accepted.workerId, config);
        inFlight = handling.then(
          () => undefined,
          () => undefined,
        );
        try {
          await handling;
        } catch (err) {
          // stopped mid-request: the replica is going away and the coordinator was told goodbye, not a failure
          if (stopped) break;
          const code = isDptrainError(err) ? err.code : 'E_WORKER';
          // an unexpected error says where it happened (phase, step, layer, kernel); its stack with DPTRAIN_DEBUG=1
          const message = isDptrainError(err) ? err.message : describeUnexpectedError(err);
          log(`${code}: ${message}`);
          if (process.env.DPTRAIN_DEBUG && process.env.DPTRAIN_DEBUG !== '0' && err instanceof Error && err.stack) log(err.stack);
          send({ type: 'error', code, message: message.slice(0, 4000) });
        } finally {
          inFlight = undefined;
        }
        await new Promise<void>((res) => setImmediate(res)); // let heartbeats out between requests
      }
      await Promise.race([closedP, new Promise((res) => setTimeout(res, 200))]);
      return byeSeen ? 'bye' : 'closed';
    } finally {
      sayBye = undefined;
      clearInterval(beat);
      void liveness?.stop();
      if (!closed) conn.ws.terminate();
    }
  }

  async function handle(r: Replica, msg: Message, send: (m: Outgoing) => void, workerId: string, config: RunConfig): Promise<void> {
    switch (msg.type) {
      case 'welcome':
        if (msg.phase) {
          await r.setPhase(msg.phase);
          if (msg.weights) r.setWeights(msg.weights);
        }
        log(`joined as ${workerId} at step ${msg.step}`);
        return;
      case 'phase': {
        await r.setPhase(msg.phase);
        if (msg.weights) r.setWeights(msg.weights);
        send({
          type: 'phase_ready',
          id: msg.id,
          spec: r.spec.map((s) => ({ name: s.name, shape: s.shape, size: s.size })),
          weights: msg.wantWeights ? r.getWeights() : null,
        });
        return;
      }
      case 'weights':
        r.setWeights(msg.weights);
        if (msg.ack) send({ type: 'weights_ack', step: msg.step });
        return;
      case 'step': {
        const t0 = performance.now();
        blockStepForTest(msg.step);
        if (msg.indices.length > batchCapacity)
          throw new DptrainError(
            'E_BATCH_CAPACITY',
            `step ${msg.step}: a slice of ${msg.indices.length} samples, above this worker's --batch-capacity ${batchCapacity}`,
          );
        await slowStepForTest(msg.indices.length);
        // the mean over this slice along the micro-batch tree (the coordinator merges the slices along the same tree)
        const res = await computeTreeGradients(
          r,
          samplesOf('labelled', msg.indices),
          { phase: msg.phase, epoch: msg.epoch, step: msg.step },
          config.microBatch,
        );
        send({
          type: 'gradients',
          id: msg.id,
          ...packGradients(res.gradients, msg.fp16 ?? config.fp16Gradients),
          loss: res.loss,
          count: res.count,
          correct: res.correct,
          computeMs: performance.now() - t0,
        });
        return;
      }
      case 'predict': {
        const t0 = performance.now();
        const samples = samplesOf(msg.split, msg.indices);
        const probs = await r.predict(samples);
        send({ type: 'predictions', id: msg.id, count: samples.length, probs, computeMs: performance.now() - t0 });
        return;
      }
      case 'error':
        log(`coordinator error ${msg.code}: ${msg.message}`);
        return;
      default:
        throw new DptrainError('E_PROTOCOL_SCHEMA', `unexpected '${msg.type}' from the coordinator`);
    }
  }

  void (async () => {
    let since = Date.now();
    while (!stopped) {
      try {
        const how = await session();
        if (stopped) break;
        if (how === 'bye') return finish({ reason: 'run_complete', detail: 'the coordinator finished the run' });
        log('connection lost; reconnecting');
        since = Date.now();
      } catch (err) {
        if (stopped) break;
        if (isDptrainError(err) && FATAL_CODES.includes(err.code)) {
          return finish({ reason: 'refused', detail: `${err.code}: ${err.message}` });
        }
        if (isDptrainError(err) && !err.code.startsWith('E_PROTOCOL') && err.code !== 'E_TIMEOUT') {
          // the replica could not be built (bad data, weights...): retrying will not help
          return finish({ reason: 'refused', detail: `${err.code}: ${err.message}` });
        }
        log(`cannot reach ${opts.url}: ${(err as Error).message}`);
      }
      const giveUpAfterMs = opts.giveUpAfterMs ?? 120_000;
      if (Date.now() - since > giveUpAfterMs) {
        return finish({ reason: 'gave_up', detail: `no coordinator at ${opts.url} for ${Math.round(giveUpAfterMs / 1000)} s (--give-up-after); exiting` });
      }
      await new Promise((res) => setTimeout(res, backoff.next()));
    }
    finish({ reason: 'stopped', detail: 'stopped' });
  })();

  return {
    done,
    stop: () => {
      if (stopped) return;
      stopped = true;
      if (sayBye) {
        // the coordinator drops us at once and redoes our share; the request in flight is abandoned
        sayBye('worker stopping');
        log('stopping: said goodbye to the coordinator');
      } else currentWs?.close(1000, 'worker stopping');
      // the replica is disposed once the request in flight has settled (or after the grace period)
      const grace = new Promise<void>((res) => setTimeout(res, opts.stopGraceMs ?? 10_000).unref());
      void Promise.race([inFlight ?? Promise.resolve(), grace]).then(() => finish({ reason: 'stopped', detail: 'stopped' }));
    },
  };
}

export type { MessageOf };
