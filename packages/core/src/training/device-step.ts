/**
 * The GPU-resident step, written once for any backend (tfjs ops only): each micro-batch's gradient stays a tensor in
 * the backend's memory, the micro-batches are combined along the same tree as the host merge (gradient-tree.ts),
 * and the step's mean gradient, loss and correct count come back in one asynchronous read. On the tensorflow
 * backends this saves a device→host copy (and a sync) per micro-batch; on the CPU backends the host merge stays the
 * default (it is cheap there and rounds each element once, where device ops round at every op).
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendInfo } from '../backend/types.js';
import { deviceStepFromEnv } from '../env.js';
import type { Sample } from '../data/types.js';
import { microBatchCount } from './batch-slices.js';
import type { TransferCounter } from './transfer-counter.js';
import type { GradientResult, StepContext } from './types.js';

/** One gradient computation left on the device. The caller owns (disposes) the tensors. */
export interface DeviceGradients {
  /** Mean gradient over the samples, flat in WeightSpec order. */
  gradients: tf.Tensor1D;
  /** Mean loss (scalar). */
  loss: tf.Scalar;
  /** Samples classified correctly (scalar, float32). */
  correct: tf.Scalar;
  count: number;
}

/** A replica that can leave its gradients on the device. */
export interface DeviceStepReplica {
  /** Whether computeTreeGradients should use the device path with this replica. */
  readonly deviceStep: boolean;
  computeGradientTensors(samples: Sample[], ctx: StepContext): Promise<DeviceGradients>;
  /** Where the step's read-back is counted. */
  readonly transfers: TransferCounter;
}

export const DEVICE_STEP_DEFAULTS = {
  /** Bound of the device feature cache, bytes (what does not fit stays in the host cache). */
  deviceCacheBytes: 1024 * 1024 * 1024,
} as const;

/**
 * Device step on or off: DPTRAIN_DEVICE_STEP=1/0 when set, else on for the tensorflow backends (tfjs-node,
 * tfjs-node-gpu) and off for the CPU ones (native, wasm, cpu), where the host merge is cheap.
 */
export function deviceStepDefault(backend: BackendInfo | undefined, env: NodeJS.ProcessEnv = process.env): boolean {
  const forced = deviceStepFromEnv(env);
  if (forced !== undefined) return forced;
  const name = backend?.name ?? tf.getBackend();
  return name === 'tensorflow' || name === 'tensorflow-gpu';
}

export function isDeviceStepReplica(r: unknown): r is DeviceStepReplica {
  const d = r as Partial<DeviceStepReplica>;
  return d?.deviceStep === true && typeof d.computeGradientTensors === 'function';
}

/** (na * a + nb * b) / (na + nb) on the device; disposes a and b. */
function meanOfTwoOnDevice(a: DeviceGradients, b: DeviceGradients): DeviceGradients {
  const n = a.count + b.count;
  const wa = n > 0 ? a.count / n : 0.5;
  const wb = n > 0 ? b.count / n : 0.5;
  const out = tf.tidy(() => ({
    gradients: tf.add(tf.mul(a.gradients, wa), tf.mul(b.gradients, wb)) as tf.Tensor1D,
    loss: tf.add(tf.mul(a.loss, wa), tf.mul(b.loss, wb)) as tf.Scalar,
    correct: tf.add(a.correct, b.correct) as tf.Scalar,
  }));
  for (const t of [a.gradients, a.loss, a.correct, b.gradients, b.loss, b.correct]) t.dispose();
  return { ...out, count: n };
}

/**
 * The mean gradient of `samples`, one micro-batch at a time, combined along the micro-batch tree on the device, read
 * back once (asynchronously: `data()`, which lets the event loop run while the device finishes).
 */
export async function computeTreeGradientsOnDevice(
  replica: DeviceStepReplica,
  samples: Sample[],
  ctx: StepContext,
  microBatch: number,
): Promise<GradientResult> {
  const n = samples.length;
  const k = microBatchCount(n, microBatch);
  const size = microBatch > 0 ? microBatch : n;
  const node = async (lo: number, hi: number): Promise<DeviceGradients> => {
    if (hi - lo === 1) return replica.computeGradientTensors(samples.slice(lo * size, Math.min(n, hi * size)), ctx);
    const mid = lo + Math.ceil((hi - lo) / 2);
    const left = await node(lo, mid);
    return meanOfTwoOnDevice(left, await node(mid, hi));
  };
  const r = await node(0, k);
  const packed = tf.tidy(() => tf.concat([r.gradients, r.loss.reshape([1]), r.correct.reshape([1])]));
  for (const t of [r.gradients, r.loss, r.correct]) t.dispose();
  const values = (await packed.data()) as Float32Array;
  replica.transfers.down(packed.size * 4);
  packed.dispose();
  const total = values.length - 2;
  return { gradients: values.subarray(0, total), loss: values[total]!, count: r.count, correct: Math.round(values[total + 1]!) };
}
