import * as tf from '@tensorflow/tfjs';
import { addErrorContext, addKernelToError } from '../util/error-context.js';

/** Options of {@link labelTfErrors}. */
export interface ErrorLabelOptions {
  /**
   * Test hook: a kernel name (e.g. 'Conv2D') whose run throws a TypeError while gradients are being recorded, as a
   * tfjs bug would (only inside a training step: a frozen forward pass or a prediction never records). The CLI
   * reads it from DPTRAIN_TEST_KERNEL_FAULT. Default: none.
   */
  faultKernel?: string;
}

const LABELLED = Symbol.for('dptrain.errorLabelled');

type Marked = { [LABELLED]?: true };
type RunKernel = (kernelName: string, inputs: unknown, attrs?: unknown) => unknown;
interface EngineInternals {
  runKernel: RunKernel & Marked;
  state: { gradientDepth: number };
}
type CallFn = ((this: tf.layers.Layer, ...args: unknown[]) => unknown) & Marked;

/**
 * Makes errors thrown inside tfjs say where they happened: every kernel run through the engine adds its kernel
 * name, and every layer's `call` its layer name and class (see util/error-context), so an unexpected error deep in
 * a forward or backward pass can be reported with its layer and kernel. Covers all layer classes registered
 * with tfjs so far (the built-in ones and any custom layer registered before the call); calling it again
 * covers the ones registered since. Idempotent; costs one try/catch per kernel and per layer call.
 */
export function labelTfErrors(options: ErrorLabelOptions = {}): void {
  labelKernels(options.faultKernel);
  const seen = new Set<object>();
  for (const [cls] of Object.values(tf.serialization.SerializationMap.getMap().classNameMap)) {
    for (let proto = (cls as { prototype?: object }).prototype; proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto) as object) {
      if (seen.has(proto)) break;
      seen.add(proto);
      if (Object.prototype.hasOwnProperty.call(proto, 'call')) labelCall(proto as { call: CallFn });
    }
  }
}

function labelKernels(faultKernel: string | undefined): void {
  const engine = tf.engine() as unknown as EngineInternals;
  if (engine.runKernel[LABELLED]) return;
  const original = engine.runKernel;
  const labelled: RunKernel & Marked = function (this: EngineInternals, kernelName, inputs, attrs) {
    try {
      if (kernelName === faultKernel && this.state.gradientDepth > 0) {
        throw new TypeError(`injected fault in kernel ${kernelName} (DPTRAIN_TEST_KERNEL_FAULT)`);
      }
      return original.call(this, kernelName, inputs, attrs);
    } catch (err) {
      throw addKernelToError(err, kernelName);
    }
  };
  labelled[LABELLED] = true;
  engine.runKernel = labelled;
}

function labelCall(proto: { call: CallFn }): void {
  const original = proto.call;
  if (typeof original !== 'function' || original[LABELLED]) return;
  const labelled: CallFn = function (this: tf.layers.Layer, ...args: unknown[]) {
    try {
      return original.apply(this, args);
    } catch (err) {
      throw addErrorContext(err, { layer: `${this.name} (${this.getClassName()})` });
    }
  };
  labelled[LABELLED] = true;
  proto.call = labelled;
}
