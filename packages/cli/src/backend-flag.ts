import { resolveBackend, BACKEND_ORDER, type BackendInfo, type BackendName } from '@dptrain/core';

/** Names accepted by --backend. */
export const BACKEND_CHOICES: string[] = [...BACKEND_ORDER];

/** Resolves and activates the compute backend: the one named, or the first that loads (core's resolveBackend). */
export async function startBackend(name?: string): Promise<BackendInfo> {
  return resolveBackend(name ? { backend: name as BackendName } : {});
}
