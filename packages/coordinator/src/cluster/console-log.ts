import type { EventBus, RunEvent } from '@dptrain/core';

/** A few plain lines per epoch on stderr (cluster events, epoch summaries); the dashboard shows the rest. */
export function attachClusterConsole(bus: EventBus, write: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): () => void {
  return bus.on((e: RunEvent) => {
    switch (e.type) {
      case 'log':
        if (e.level !== 'debug') write(e.message);
        break;
      case 'worker_joined':
        write(`worker ${e.worker.id} joined (${e.worker.host}, ${e.worker.backend}, ${e.worker.device})`);
        break;
      case 'worker_lost':
        write(`worker ${e.id} lost: ${e.reason}`);
        break;
      case 'waiting_for_workers':
        write(`waiting for workers: ${e.connected}/${e.required} connected`);
        break;
      case 'frame_rejected':
        write(`frame rejected [${e.code}]${e.workerId ? ` from ${e.workerId}` : ''}: ${e.reason}`);
        break;
      case 'epoch_completed':
        write(
          `${e.phase} epoch ${e.epoch + 1}: loss ${e.trainLoss.toFixed(4)} acc ${(100 * e.trainAccuracy).toFixed(1)}% | val loss ${e.valLoss.toFixed(4)} acc ${(100 * e.valAccuracy).toFixed(1)}% (${(e.epochMs / 1000).toFixed(1)} s)`,
        );
        break;
      case 'checkpoint_written':
        write(`checkpoint at step ${e.step}: ${e.path}`);
        break;
      case 'run_completed':
        write(`done: ${e.steps} steps, val acc ${(100 * e.valAccuracy).toFixed(2)}%, ${(e.wallMs / 1000).toFixed(1)} s${e.submissionPath ? `, ${e.submissionPath}` : ''}`);
        break;
      default:
        break;
    }
  });
}
