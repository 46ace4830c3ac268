/**
 * Deadlines of the requests the coordinator sends workers: a worker's first request of a kind in a phase gets
 * `firstStepTimeoutMs` (it may compile kernels or fill its feature cache); later ones get `factor` times the
 * time that worker took for as many samples (its slowest of the last `window` requests of that kind), and at
 * least `floorMs`. A request past its deadline is treated as a lost worker's (see ClusterExecutor).
 */

export interface RequestDeadlineOptions {
  /** Deadline of a worker's first request of a kind (step, predict, phase switch) in a phase, ms. Default 300 000. */
  firstStepTimeoutMs?: number;
  /**
   * The same for a worker whose GPU runs tfjs-node-gpu only through the PTX JIT (Hopper: TensorFlow warns that
   * the first start can take 30 minutes or more), ms. Default 2 700 000 (45 minutes).
   */
  ptxJitFirstStepTimeoutMs?: number;
  /** Least deadline of any later request, ms. Default 30 000. */
  floorMs?: number;
  /** A later request's deadline is this many times the worker's measured time for as many samples. Default 10. */
  factor?: number;
  /** Measurements kept per worker and kind (the slowest counts). Default 8. */
  window?: number;
}

export const DEFAULT_REQUEST_DEADLINES: Required<RequestDeadlineOptions> = {
  firstStepTimeoutMs: 300_000,
  ptxJitFirstStepTimeoutMs: 2_700_000,
  floorMs: 30_000,
  factor: 10,
  window: 8,
};

/** What a request asks for: gradients of a slice, predictions of a chunk, or a phase switch. */
export type RequestKind = 'step' | 'predict' | 'phase';

export class RequestDeadlines {
  private readonly opts: Required<RequestDeadlineOptions>;
  /** `${worker}|${kind}|${phase}` -> recent ms per sample. */
  private readonly perSample = new Map<string, number[]>();
  /** Workers whose GPU needs the PTX JIT (their join said so): the longer first-request deadline. */
  private readonly ptxJit = new Set<string>();

  constructor(options: RequestDeadlineOptions = {}) {
    this.opts = { ...DEFAULT_REQUEST_DEADLINES };
    for (const [k, v] of Object.entries(options)) if (v !== undefined) (this.opts as Record<string, number>)[k] = v;
  }

  get options(): Readonly<Required<RequestDeadlineOptions>> {
    return this.opts;
  }

  /** Records that `worker` answered a request of `kind` over `samples` samples in `ms`. */
  record(worker: string, kind: RequestKind, phase: string, samples: number, ms: number): void {
    const key = `${worker}|${kind}|${phase}`;
    const xs = this.perSample.get(key) ?? [];
    xs.push(Math.max(0, ms) / Math.max(1, samples));
    if (xs.length > this.opts.window) xs.shift();
    this.perSample.set(key, xs);
  }

  /** Deadline, in ms, of a request of `kind` over `samples` samples to `worker`. */
  deadlineMs(worker: string, kind: RequestKind, phase: string, samples: number): number {
    const xs = kind === 'phase' ? undefined : this.perSample.get(`${worker}|${kind}|${phase}`);
    if (!xs || xs.length === 0)
      return this.ptxJit.has(worker) ? Math.max(this.opts.firstStepTimeoutMs, this.opts.ptxJitFirstStepTimeoutMs) : this.opts.firstStepTimeoutMs;
    return Math.max(this.opts.floorMs, this.opts.factor * Math.max(...xs) * Math.max(1, samples));
  }

  /** Marks `worker` as one whose GPU runs through the PTX JIT (from its join's GPU verdict). */
  markPtxJit(worker: string): void {
    this.ptxJit.add(worker);
  }

  /** Forgets a worker's measurements (it left; a rejoin starts with the first-step deadline again). */
  forget(worker: string): void {
    for (const k of [...this.perSample.keys()]) if (k.startsWith(`${worker}|`)) this.perSample.delete(k);
    this.ptxJit.delete(worker);
  }
}
