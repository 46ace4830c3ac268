import { describe, expect, it } from 'vitest';
import { computeCapabilityByName, tfjsNodeGpuVerdict } from '../../packages/core/src/backend/gpu-support.js';
import { parseNvidiaSmi, queryGpus, NVIDIA_SMI_FIELDS } from '../../packages/core/src/backend/nvidia-smi.js';
import { pickVersion, versionsOf } from '../../packages/core/src/backend/gpu.js';

describe('tfjs-node-gpu 4.22 verdict by compute capability (sm_35,sm_50,sm_60,sm_70,sm_75,compute_80)', () => {
  it('SASS within a major covers every later minor; compute_80 is SASS too, so all of 8.x is native', () => {
    for (const cc of ['3.5', '3.7', '5.0', '5.2', '6.0', '6.1', '7.0', '7.2', '7.5', '8.0', '8.6', '8.7', '8.9']) {
      expect(tfjsNodeGpuVerdict(cc), cc).toBe('native');
    }
  });
  it('Hopper runs only through the PTX JIT; Blackwell and pre-3.5 GPUs are unsupported; unknown stays unknown', () => {
    expect(tfjsNodeGpuVerdict('9.0')).toBe('ptx-jit');
    for (const cc of ['10.0', '10.3', '12.0', '3.0', '2.1']) expect(tfjsNodeGpuVerdict(cc), cc).toBe('unsupported');
    expect(tfjsNodeGpuVerdict(null)).toBeNull();
    expect(tfjsNodeGpuVerdict('[N/A]')).toBeNull();
  });
  it('falls back to a name table for drivers without compute_cap', () => {
    expect(computeCapabilityByName('NVIDIA A100-SXM4-40GB')).toBe('8.0');
    expect(computeCapabilityByName('NVIDIA H100 80GB HBM3')).toBe('9.0');
    expect(computeCapabilityByName('Tesla V100-SXM2-16GB')).toBe('7.0');
    expect(computeCapabilityByName('NVIDIA L4')).toBe('8.9');
    expect(computeCapabilityByName('NVIDIA A10G')).toBe('8.6');
    expect(computeCapabilityByName('Tesla T4')).toBe('7.5');
    expect(computeCapabilityByName('NVIDIA B200')).toBe('10.0');
    expect(computeCapabilityByName('Some Future GPU')).toBeNull();
  });
});

describe('nvidia-smi parsing', () => {
  it('reads name, compute capability, driver and memory; a missing or [N/A] column gives null', () => {
    const gpus = parseNvidiaSmi('NVIDIA A100-SXM4-80GB, 8.0, 535.104.05, 81920\nTesla T4, [N/A], 535.104.05\n', NVIDIA_SMI_FIELDS);
    expect(gpus[0]).toEqual({
      index: 0,
      name: 'NVIDIA A100-SXM4-80GB',
      computeCapability: '8.0',
      computeCapabilitySource: 'driver',
      driver: '535.104.05',
      memoryMiB: 81920,
      tfjsNodeGpu: 'native',
    });
    expect(gpus[1]).toMatchObject({ index: 1, name: 'Tesla T4', computeCapability: '7.5', computeCapabilitySource: 'name', memoryMiB: null });
  });
  it('an old driver that refuses compute_cap is asked again without it; an unknown name is reported unknown', async () => {
    const calls: string[][] = [];
    const gpus = await queryGpus({
      run: async (args) => {
        calls.push(args);
        if (args[0]!.includes('compute_cap')) return null; // "Field "compute_cap" is not a valid field to query." exits non-zero
        return 'Tesla V100-SXM2-16GB, 470.82.01, 16160\nMystery GPU, 470.82.01, 8000\n';
      },
    });
    expect(calls).toHaveLength(2);
    expect(calls[1]![0]).toBe('--query-gpu=name,driver_version,memory.total');
    expect(gpus!.map((g) => [g.computeCapability, g.tfjsNodeGpu, g.driver])).toEqual([
      ['7.0', 'native', '470.82.01'],
      [null, null, '470.82.01'],
    ]);
  });
  it('no nvidia-smi → null (no driver), not an error', async () => {
    expect(await queryGpus({ run: async () => null })).toBeNull();
  });
});

describe('CUDA library versions', () => {
  it('reads full versions from file names and prefers the majors tfjs-node-gpu needs', () => {
    const names = [
      'libcudart.so.11.0',
      'libcudart.so.11.2.152',
      'libcudart.so.12',
      'libcudart.so',
      'libcudnn.so.8',
      'libcudnn.so.8.1.1',
      'libcudnn_ops_infer.so.8',
    ];
    expect(versionsOf(names, 'libcudart')).toEqual(['11.0', '11.2.152', '12']);
    expect(pickVersion(versionsOf(names, 'libcudart'), 11)).toBe('11.2.152');
    expect(pickVersion(versionsOf(names, 'libcudnn'), 8)).toBe('8.1.1');
    expect(pickVersion(['12.4', '12.8.1'], 11)).toBe('12.8.1');
    expect(pickVersion([], 11)).toBeNull();
  });
});
