import { isDptrainError, type Sample } from '@dptrain/core';
import { DeadlineError, WorkerLostError, WorkerTaskError, type Peer } from './peer.js';
import type { ClusterServer } from './server.js';

/** Samples for one request, and the worker it is meant for (none: whichever worker is free first). */
export interface Share {
  indices: Sample[];
  owner?: Peer;
}

interface Task extends Share {
  failures: number;
}

/** What `distribute` needs from the executor around it. */
export interface DistributionContext {
  server: Pick<ClusterServer, 'workers' | 'onWorkerJoined' | 'drop' | 'reject'>;
  /** A task that fails on this many workers (worker errors, not losses) fails the whole run of tasks. */
  maxFailures: number;
  /** Waits until `n` workers are joined. */
  waitForWorkers(n: number): Promise<void>;
  /** True for a request failure that ends the whole run of tasks at once (a lost shard in a sharded step). Default: none. */
  aborts?(err: unknown): boolean;
}

/** The live workers of `preferred` other than `lost`; all live workers but `lost` when none of them is left. */
export function survivorsOf(preferred: readonly Peer[], lost: Peer, live: readonly Peer[]): Peer[] {
  const left = preferred.filter((p) => p !== lost && !p.closed);
  return left.length > 0 ? left : live.filter((p) => p !== lost);
}

/**
 * Runs `tasks` on the workers: a free worker takes the next queued task meant for it, else the next one meant
 * for nobody (a task meant for a worker that is gone is re-cut with `recut` among the survivors first); the
 * task of a lost, late (past its deadline) or rejected worker is re-cut the same way. Each task is accepted
 * exactly once: a late worker is dropped, so its answer never arrives.
 */
export async function distribute<R>(
  ctx: DistributionContext,
  tasks: Share[],
  run: (peer: Peer, part: Sample[]) => Promise<R>,
  accept: (peer: Peer, part: Sample[], result: R) => void,
  preferred: Peer[],
  recut: (part: Sample[], survivors: Peer[]) => Share[],
): Promise<void> {
  const { server } = ctx;
  let queue: Task[] = tasks.map((t) => ({ ...t, failures: 0 }));
  const inflight = new Map<Peer, Task>();
  let wake: () => void = () => undefined;
  let fatal: Error | undefined;
  const offJoin = server.onWorkerJoined(() => wake());
  const requeue = (task: Task, lost: Peer): void => {
    const share = recut(task.indices, survivorsOf(preferred, lost, server.workers));
    queue.unshift(...share.map((t) => ({ ...t, failures: task.failures })));
  };
  try {
    while ((queue.length > 0 || inflight.size > 0) && !fatal) {
      const signal = new Promise<void>((r) => (wake = r));
      const live = server.workers;
      preferred = preferred.filter((p) => !p.closed);
      // tasks meant for a worker that is gone (lost between its parts) go to the survivors
      const orphans = queue.filter((t) => t.owner?.closed);
      queue = queue.filter((t) => !t.owner?.closed);
      for (const t of orphans.reverse()) requeue(t, t.owner!);
      const idle = (preferred.length > 0 ? preferred : live).filter((p) => !inflight.has(p));
      for (const peer of idle) {
        let at = queue.findIndex((t) => t.owner === peer);
        if (at < 0) at = queue.findIndex((t) => !t.owner || !live.includes(t.owner));
        if (at < 0) continue;
        const task = queue.splice(at, 1)[0]!;
        inflight.set(peer, task);
        run(peer, task.indices).then(
          (result) => {
            inflight.delete(peer);
            accept(peer, task.indices, result);
            wake();
          },
          (err: unknown) => {
            inflight.delete(peer);
            if (ctx.aborts?.(err)) {
              // the step cannot complete as laid out (a lost shard): stop it, the worker did nothing wrong
              fatal = err as Error;
              wake();
              return;
            }
            if (err instanceof DeadlineError)
              server.drop(peer, `deadline: ${err.message}`); // late: redone by the others
            else if (err instanceof WorkerLostError) {
              // lost: its share is redone by the others
            } else if (isDptrainError(err) && !(err instanceof WorkerTaskError))
              server.reject(peer, err); // bad reply: drop the worker
            else {
              // the worker could not do it (or an unexpected failure): counted against the task
              task.failures++;
              if (task.failures >= ctx.maxFailures) fatal = err as Error;
              server.drop(peer, `request failed: ${(err as Error).message}`);
            }
            requeue(task, peer);
            wake();
          },
        );
      }
      if (inflight.size === 0 && queue.length > 0 && server.workers.length === 0) {
        await ctx.waitForWorkers(1);
        continue;
      }
      await signal;
    }
  } finally {
    offJoin();
  }
  if (fatal) throw fatal;
}
