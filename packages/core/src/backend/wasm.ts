/**
 * The wasm backend in Node: points it at its .wasm files inside node_modules, runs it single-threaded
 * (tfjs-backend-wasm has no threads in Node) and installs the training kernels it lacks.
 */
import path from 'node:path';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels } from './kernels/register.js';

const require = createRequire(import.meta.url);

/** Directory (with trailing separator) holding tfjs-backend-wasm's .wasm binaries. */
export function wasmBinaryDir(): string {
  const pkg = require.resolve('@tensorflow/tfjs-backend-wasm/package.json');
  return path.join(path.dirname(pkg), 'dist') + path.sep;
}

let pathsSet = false;

/**
 * Makes 'wasm' the active tfjs backend (idempotent) with the training kernels registered.
 * Returns the device in words, e.g. "cpu (wasm, SIMD, 1 thread)".
 */
export async function activateWasm(): Promise<string> {
  registerWasmTrainingKernels();
  if (!pathsSet) {
    try {
      setWasmPaths(wasmBinaryDir());
    } catch {
      // setWasmPaths throws once the backend is initialised: someone else set it up already.
    }
    pathsSet = true;
  }
  const ok = await tf.setBackend('wasm');
  if (!ok || tf.getBackend() !== 'wasm') throw new Error('tf.setBackend("wasm") failed (see the tfjs warning above)');
  await tf.ready();
  const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
  return `cpu (wasm${simd ? ', SIMD' : ''}, 1 thread)`;
}
