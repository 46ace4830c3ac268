// TensorBoard scalars written by a real runTraining run, read back by an independent reader written in Python
// from the format's specification (test/training/read_tfevents.py: TFRecord + masked CRC-32C + Event protobuf).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseRunConfig } from '../../packages/core/src/config.js';
import type { Dataset, Sample } from '../../packages/core/src/data/types.js';
import { EventBus } from '../../packages/core/src/events/bus.js';
import type { RunEvent } from '../../packages/core/src/events/types.js';
import { InProcessExecutor } from '../../packages/core/src/training/in-process-executor.js';
import { C, LinearReplica } from '../../packages/core/src/training/linear-replica.testutil.js';
import { runTraining } from '../../packages/core/src/training/recipe.js';
import { EventFileWriter } from '../../packages/core/src/training/tensorboard/event-file.js';

const reader = path.join(path.dirname(fileURLToPath(import.meta.url)), 'read_tfevents.py');
const hasPython = spawnSync('python3', ['--version']).status === 0;

interface Scalar {
  step: number;
  wallTime: number;
  tag: string;
  value: number;
}
interface EventFile {
  file: string;
  fileVersion: string | null;
  scalars: Scalar[];
}

function readEvents(dir: string): EventFile[] {
  const files = readdirSync(dir)
    .filter((f) => f.startsWith('events.out.tfevents.'))
    .map((f) => path.join(dir, f));
  const r = spawnSync('python3', [reader, ...files], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`read_tfevents failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as EventFile[];
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe.skipIf(!hasPython)('TensorBoard event files', () => {
  it('a run writes train and validation scalars per step and per epoch that an independent reader decodes', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dpt-tb-'));
    const mk = (split: 'labelled' | 'test', i: number, label: number): Sample => ({ split, index: i, name: `${split}${i}.jpg`, path: `/nowhere/${i}`, label });
    const labelled = Array.from({ length: 30 }, (_, i) => mk('labelled', i, i % C));
    const test = Array.from({ length: 4 }, (_, i) => mk('test', i, -1));
    const dataset: Dataset = { layout: 'competition', root: '/nowhere', classNames: ['a', 'b', 'c'], labelled, test, hash: 'h' };
    const config = parseRunConfig({
      dataDir: '/nowhere',
      batchSize: 8,
      headPhase: { epochs: 2, learningRate: 0.05 },
      fineTunePhase: { epochs: 1, learningRate: 0.01, unfreeze: 'x' },
      patience: 10,
    });
    const events: RunEvent[] = [];
    const bus = new EventBus();
    bus.on((e) => events.push(e));
    await runTraining({
      config,
      runDir: dir,
      data: { dataset, train: labelled.slice(0, 24), val: labelled.slice(24), test },
      executor: new InProcessExecutor(new LinearReplica()),
      bus,
      backend: { name: 'cpu', device: 'test' },
    });

    const [train] = readEvents(path.join(dir, 'tensorboard', 'train'));
    const [validation] = readEvents(path.join(dir, 'tensorboard', 'validation'));
    expect(train?.fileVersion).toBe('brain.Event:2');
    expect(validation?.fileVersion).toBe('brain.Event:2');

    const steps = events.filter((e): e is Extract<RunEvent, { type: 'step_completed' }> => e.type === 'step_completed');
    expect(steps).toHaveLength(3 * 3);
    const batchLoss = train!.scalars.filter((s) => s.tag === 'batch_loss');
    expect(batchLoss.map((s) => s.step)).toEqual(steps.map((e) => e.step));
    batchLoss.forEach((s, i) => expect(s.value).toBeCloseTo(steps[i]!.loss, 5));
    const lr = train!.scalars.filter((s) => s.tag === 'batch_learning_rate').map((s) => s.value);
    expect(lr[0]).toBeCloseTo(0.05, 6);
    expect(lr.at(-1)).toBeCloseTo(0.01, 6);
    for (const tag of ['batch_images_per_second', 'batch_step_time_ms']) expect(train!.scalars.filter((s) => s.tag === tag)).toHaveLength(steps.length);

    const epochs = events.filter((e): e is Extract<RunEvent, { type: 'epoch_completed' }> => e.type === 'epoch_completed');
    const trainAcc = train!.scalars.filter((s) => s.tag === 'epoch_accuracy');
    const valAcc = validation!.scalars.filter((s) => s.tag === 'epoch_accuracy');
    // the fine-tune epoch continues the head's numbering: 0, 1, 2
    expect(trainAcc.map((s) => s.step)).toEqual([0, 1, 2]);
    expect(valAcc.map((s) => s.step)).toEqual([0, 1, 2]);
    valAcc.forEach((s, i) => expect(s.value).toBeCloseTo(epochs[i]!.valAccuracy, 5));
    trainAcc.forEach((s, i) => expect(s.value).toBeCloseTo(epochs[i]!.trainAccuracy, 5));
    expect(validation!.scalars.filter((s) => s.tag === 'epoch_loss')).toHaveLength(3);
  });

  it('the reader refuses a damaged file, so the CRCs it checks are real', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dpt-tb-bad-'));
    const w = new EventFileWriter(dir, { now: () => 1_700_000_000_000, host: 'h' });
    w.addScalars(7, { loss: 0.25 });
    w.close();
    const good = readEvents(dir)[0]!;
    expect(good.scalars).toEqual([{ step: 7, wallTime: 1_700_000_000, tag: 'loss', value: 0.25 }]);
    const bytes = readFileSync(w.file);
    bytes[bytes.length - 6] ^= 0x01; // inside the last record's float
    writeFileSync(w.file, bytes);
    expect(() => readEvents(dir)).toThrow(/bad data CRC/);
  });
});
