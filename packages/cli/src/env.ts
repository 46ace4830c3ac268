/**
 * The DPTRAIN_* environment variables that @dptrain/cli reads or sets, here and nowhere else in the package
 * (DPTRAIN_DEBUG is read through core's debugFromEnv, DPTRAIN_TOKEN through the coordinator's resolveSharedToken).
 */

/** DPTRAIN_TEST_KERNEL_FAULT (test hook): a kernel name whose run throws inside a training step; undefined when unset. */
export function kernelFaultFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.DPTRAIN_TEST_KERNEL_FAULT || undefined;
}

/** `--verbose`: sets DPTRAIN_DEBUG=1 in this process, so the local workers it starts inherit it. */
export function setDebugForChildren(env: NodeJS.ProcessEnv = process.env): void {
  env.DPTRAIN_DEBUG = '1';
}
