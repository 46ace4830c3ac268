import { BACKEND_ORDER } from '@dptrain/core';

/** Names accepted by --backend. */
export const BACKEND_CHOICES: string[] = [...BACKEND_ORDER];
