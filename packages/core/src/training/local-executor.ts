import type { BackendInfo } from '../backend/types.js';
import { InProcessExecutor, type InProcessExecutorOptions } from './in-process-executor.js';
import type { ExecutorFactory } from './recipe.js';
import { createReplica, type ReplicaOptions } from './replica.js';

export interface LocalExecutorFactoryOptions {
  /** Backend in use (recorded by the replica). Default: none. */
  backend?: BackendInfo;
  /** Extra replica options (cache dir, chunk size, ...). Default: none. */
  replica?: Omit<ReplicaOptions, 'dataset' | 'backend' | 'onWarning'>;
  /** Executor options (micro-batch, predict chunk). Default: none. */
  executor?: Omit<InProcessExecutorOptions, 'bus' | 'clock'>;
}

/**
 * ExecutorFactory for a run in this process: one ModelReplica behind an InProcessExecutor. Replica warnings
 * and progress go to the run's event bus. (The cluster passes its own factory to runTraining instead.)
 */
export function localExecutorFactory(options: LocalExecutorFactoryOptions = {}): ExecutorFactory {
  return async ({ config, data, bus, clock }) => {
    const replica = await createReplica(config, {
      // each micro-batch result is merged or consumed before the replica's next-but-one call: two buffers in turn
      gradientBuffers: 2,
      ...options.replica,
      dataset: data.dataset,
      ...(options.backend ? { backend: options.backend } : {}),
      onWarning: (message) => bus.emit({ type: 'log', time: clock.now(), level: 'warn', message }),
    });
    return new InProcessExecutor(replica, { microBatch: config.microBatch, ...options.executor, bus, clock });
  };
}
