/**
 * The exchange lab's synthetic worker: the real dptrain worker (startWorker: handshake, join, phase, step,
 * gradients, weights) over a model-free replica whose gradient has the real size (`--floats`). It reads the run's
 * (tiny) data set and hashes the run's (tiny) backbone as a real worker does, so it passes the same join checks,
 * at a coordinator or at an agent. It takes the flags of `dptrain worker` that it needs, so an agent can start it
 * in place of one (`--worker-command`), and ignores the others (backend, cache).
 *
 *   tsx bench/exchange-lab/synthetic-worker.ts --connect ws://HOST:PORT [--token T | --token-file F] [--floats N]
 *     [--data DIR]
 *     [--name NAME] [--batch-capacity N] [--lost-after-ms MS] [--give-up-after S] [--exit-with-parent]
 *
 * The token defaults to $DPTRAIN_TOKEN, the size to $DPTRAIN_LAB_FLOATS, then 9.2 M floats.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { computeBaseHash, useNativeOptimizer } from '@dptrain/core';
import { onParentGone, startWorker, type WorkerOptions } from '@dptrain/worker';
import { syntheticReplica } from './synthetic-replica.js';

/** Floats of the flatten head's trainable set (VGG16 block5 + head), the lab's default size. */
export const LAB_DEFAULT_FLOATS = 9_200_000;
/** The synthetic gradient's time per sample, ms (see SyntheticReplicaOptions.computeMsPerSample). */
export const LAB_COMPUTE_MS_PER_SAMPLE = 5;

const { values: a } = parseArgs({
  options: {
    connect: { type: 'string' },
    token: { type: 'string' },
    'token-file': { type: 'string' },
    floats: { type: 'string' },
    data: { type: 'string' },
    name: { type: 'string' },
    'batch-capacity': { type: 'string' },
    'lost-after-ms': { type: 'string' },
    'heartbeat-ms': { type: 'string' },
    'give-up-after': { type: 'string' },
    'exit-with-parent': { type: 'boolean' },
  },
  strict: false,
  allowPositionals: true,
});

const str = (v: string | boolean | undefined): string | undefined => (typeof v === 'string' ? v : undefined);
const url = str(a.connect);
const tokenFile = str(a['token-file']);
const token = str(a.token) ?? (tokenFile ? readFileSync(tokenFile, 'utf8').trim() : process.env.DPTRAIN_TOKEN);
if (!url || !token) {
  process.stderr.write('synthetic worker: --connect URL and a token (--token, --token-file or $DPTRAIN_TOKEN) are required\n');
  process.exit(2);
}
const floats = Number(str(a.floats) ?? process.env.DPTRAIN_LAB_FLOATS ?? LAB_DEFAULT_FLOATS);
if (!Number.isInteger(floats) || floats < 1) {
  process.stderr.write(`synthetic worker: --floats must be a positive integer (got ${String(a.floats)})\n`);
  process.exit(2);
}

// A real worker loads its compute backend (the native addon when present, with its allocator options).
await useNativeOptimizer();
const options: WorkerOptions = {
  url,
  token,
  // a fixed 5 ms per sample: equal measured rates, so the coordinator's throughput-weighted shares stay equal
  createReplica: async (config) => syntheticReplica({ floats, baseHash: (await computeBaseHash(config)).hash, computeMsPerSample: LAB_COMPUTE_MS_PER_SAMPLE }),
  log: (m) => process.stderr.write(`synthetic worker: ${m}\n`),
  giveUpAfterMs: Number(str(a['give-up-after']) ?? 30) * 1000,
};
const data = str(a.data);
if (data) options.dataDir = data;
const name = str(a.name);
if (name) options.host = name;
const capacity = str(a['batch-capacity']);
if (capacity) options.batchCapacity = Number(capacity);
const lostAfter = str(a['lost-after-ms']);
if (lostAfter) options.lostAfterMs = Number(lostAfter);
const heartbeat = str(a['heartbeat-ms']);
if (heartbeat) options.heartbeatIntervalMs = Number(heartbeat);
const handle = startWorker(options);
// as `dptrain worker --exit-with-parent`: an agent's local workers go when it goes, even on its kill -9
if (a['exit-with-parent']) onParentGone(() => process.exit(0));
const exit = await handle.done;
process.exit(exit.reason === 'run_complete' || exit.reason === 'stopped' ? 0 : 2);
