import { describe, expect, it } from 'vitest';
import { isDptrainError, type GpuDescription } from '@dptrain/core';
import { parseNproc, resolveNproc } from './nproc.js';

const gpu = (index: number): GpuDescription => ({
  index,
  name: 'NVIDIA A100-SXM4-40GB',
  computeCapability: '8.0',
  computeCapabilitySource: 'driver',
  driver: '535.104.05',
  memoryMiB: 40960,
  tfjsNodeGpu: 'native',
});

const codeOf = async (p: Promise<unknown>): Promise<string | undefined> =>
  p.then(
    () => undefined,
    (e: unknown) => (isDptrainError(e) ? e.code : String(e)),
  );

describe('--nproc-per-node', () => {
  it('parses a positive count, gpu or cpu, and names anything else', () => {
    expect(parseNproc('4')).toBe(4);
    expect(parseNproc('gpu')).toBe('gpu');
    expect(parseNproc('cpu')).toBe('cpu');
    for (const bad of ['0', '-1', '1.5', 'gpus', '']) {
      expect(() => parseNproc(bad), bad).toThrow(/--nproc-per-node: '.*' is not a positive count, 'gpu' or 'cpu'/);
    }
  });

  it('gpu: one worker per GPU of CUDA_VISIBLE_DEVICES, each seeing only its own; without it, per GPU nvidia-smi lists', async () => {
    const visible = await resolveNproc('gpu', { env: { CUDA_VISIBLE_DEVICES: '2,5' }, queryGpus: async () => [gpu(0)] });
    expect(visible.count).toBe(2);
    expect([visible.slotEnv(0), visible.slotEnv(1)]).toEqual([{ CUDA_VISIBLE_DEVICES: '2' }, { CUDA_VISIBLE_DEVICES: '5' }]);
    expect(visible.pinCpus).toBe(false);
    const listed = await resolveNproc('gpu', { env: {}, queryGpus: async () => [gpu(0), gpu(1), gpu(2)] });
    expect(listed.count).toBe(3);
    expect(listed.slotEnv(2)).toEqual({ CUDA_VISIBLE_DEVICES: '2' });
  });

  it('gpu without a GPU is a configuration error that says why', async () => {
    expect(await codeOf(resolveNproc('gpu', { env: {}, queryGpus: async () => null }))).toBe('E_CONFIG');
    await expect(resolveNproc('gpu', { env: { CUDA_VISIBLE_DEVICES: '' } })).rejects.toThrow(/no GPU is visible \(CUDA_VISIBLE_DEVICES=''\)/);
    await expect(resolveNproc('gpu', { env: {}, queryGpus: async () => [] })).rejects.toThrow(/nvidia-smi lists none/);
  });

  it('cpu: one pinned worker per CPU this process may run on; a count as given, pinned', async () => {
    const cpu = await resolveNproc('cpu', { cpus: () => 6 });
    expect(cpu).toMatchObject({ count: 6, pinCpus: true });
    expect(cpu.slotEnv(0)).toEqual({});
    expect(await resolveNproc(3)).toMatchObject({ count: 3, pinCpus: true });
  });
});
