import type { Sample } from '../data/types.js';
import type { EventBus } from '../events/bus.js';
import type { PhaseName, ProgressTask } from '../events/types.js';
import { systemClock, type Clock } from '../util/clock.js';
import { computeTreeGradients } from './gradient-tree.js';
import type { AggregatedGradients, Replica, StepContext, TrainingExecutor, WeightSpec } from './types.js';

export interface InProcessExecutorOptions {
  /**
   * Samples per replica call: the batch's gradient is the mean of micro-batch gradients combined along a fixed
   * tree (computeTreeGradients), the same as a cluster's workers and coordinator compute it. 0: the whole batch
   * in one call. Default 0 (localExecutorFactory passes the run config's microBatch).
   */
  microBatch?: number;
  /** Samples per predict call (progress is reported after each). Default 64. */
  predictChunk?: number;
  /** Where progress events go. Default: none. */
  bus?: EventBus;
  /** Time source. Default: systemClock. */
  clock?: Clock;
  /** Id reported in per-worker step figures. Default 'local'. */
  id?: string;
  /** Dispose the replica on close(). Default true. */
  disposeReplica?: boolean;
}

/** A TrainingExecutor over one in-process Replica (`dptrain train`, and `single --workers 0`). */
export class InProcessExecutor implements TrainingExecutor {
  private readonly clock: Clock;
  constructor(
    readonly replica: Replica,
    private readonly options: InProcessExecutorOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
  }

  async beginPhase(phase: PhaseName, weights?: Float32Array): Promise<{ spec: WeightSpec[]; weights: Float32Array }> {
    await this.replica.setPhase(phase);
    if (weights) this.replica.setWeights(weights);
    return { spec: this.replica.spec, weights: this.replica.getWeights() };
  }

  async computeGradients(samples: Sample[], ctx: StepContext): Promise<AggregatedGradients> {
    const t = this.clock.now();
    const res = await computeTreeGradients(this.replica, samples, ctx, this.options.microBatch ?? 0);
    const id = this.options.id ?? 'local';
    return { ...res, workers: [{ id, samples: res.count, computeMs: this.clock.now() - t, bytesIn: 0, bytesOut: 0 }] };
  }

  async setWeights(weights: Float32Array): Promise<void> {
    this.replica.setWeights(weights);
  }

  async predict(samples: Sample[], task: ProgressTask): Promise<Float32Array> {
    const chunk = Math.max(1, this.options.predictChunk ?? 64);
    const parts: Float32Array[] = [];
    let total = 0;
    for (let i = 0; i < samples.length; i += chunk) {
      const p = await this.replica.predict(samples.slice(i, i + chunk));
      parts.push(p);
      total += p.length;
      this.options.bus?.emit({ type: 'progress', time: this.clock.now(), task, done: Math.min(samples.length, i + chunk), total: samples.length });
    }
    const out = new Float32Array(total);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  /**
   * Writes the replica's full model (tfjs layers format + dptrain metadata) into `dir`, when the replica can
   * (ModelReplica.save). Returns false when it cannot.
   */
  async exportModel(dir: string): Promise<boolean> {
    const r = this.replica as Replica & { save?: (dir: string) => Promise<void> };
    if (typeof r.save !== 'function') return false;
    await r.save(dir);
    return true;
  }

  async close(): Promise<void> {
    if (this.options.disposeReplica ?? true) this.replica.dispose();
  }
}
