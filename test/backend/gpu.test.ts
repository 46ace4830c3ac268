import { describe, expect, it } from 'vitest';
import { assessGpu, findCudaLibraries, gatherGpuFacts, type GpuFacts } from '../../packages/core/src/backend/gpu.js';
import { majorsOf } from '../../packages/core/src/backend/gpu.js';

const good: GpuFacts = {
  tfUsesGpu: undefined,
  cudaVisibleDevices: undefined,
  gpus: ['NVIDIA H100 80GB HBM3'],
  cudartMajors: [11],
  cudnnMajors: [8],
};

describe('assessGpu', () => {
  it('GPU, CUDA 11 and cuDNN 8 present → usable, device names the GPU', () => {
    expect(assessGpu(good)).toEqual({ usable: true, device: 'GPU 0: NVIDIA H100 80GB HBM3 (CUDA 11, cuDNN 8)' });
  });
  it('CUDA 12 only → not usable, says which version is needed and which was found', () => {
    const v = assessGpu({ ...good, cudartMajors: [12] });
    expect(v.usable).toBe(false);
    expect(v.reason).toContain('needs CUDA 11.x (libcudart.so.11), found: 12.x');
    expect(v.reason).toContain('silently train on the CPU');
  });
  it('cuDNN missing → not usable', () => {
    const v = assessGpu({ ...good, cudnnMajors: [] });
    expect(v.usable).toBe(false);
    expect(v.reason).toContain('cuDNN 8.x (libcudnn.so.8), found: none found');
  });
  it('CUDA_VISIBLE_DEVICES hiding every GPU → not usable', () => {
    for (const cvd of ['', '-1']) {
      const v = assessGpu({ ...good, cudaVisibleDevices: cvd });
      expect(v.usable).toBe(false);
      expect(v.reason).toContain('CUDA_VISIBLE_DEVICES');
    }
    expect(assessGpu({ ...good, cudaVisibleDevices: '0' }).usable).toBe(true);
  });
  it('no driver → not usable', () => {
    const v = assessGpu({ ...good, gpus: null });
    expect(v.usable).toBe(false);
    expect(v.reason).toContain('no NVIDIA driver');
  });
  it("TensorFlow's own verdict wins: false with libraries present → not usable; true → usable", () => {
    const no = assessGpu({ ...good, tfUsesGpu: false });
    expect(no.usable).toBe(false);
    expect(no.reason).toContain('TensorFlow created no GPU device');
    expect(assessGpu({ ...good, tfUsesGpu: true, cudartMajors: [] }).usable).toBe(true);
  });
});

describe('library search', () => {
  it('parses majors from file names', () => {
    expect(majorsOf(['libcudart.so.11.0', 'libcudart.so.12', 'libcudart.so', 'libcudnn.so.8', 'libcudnn_ops_infer.so.8'], 'libcudart')).toEqual([11, 12]);
    expect(majorsOf(['libcudnn.so.8.1.0', 'libcudnn_ops_infer.so.8'], 'libcudnn')).toEqual([8]);
  });
  it('finds libraries in LD_LIBRARY_PATH', async () => {
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
    const os = await import('node:os');
    const path = await import('node:path');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cudalibs-'));
    try {
      await writeFile(path.join(dir, 'libcudart.so.11.0'), '');
      await writeFile(path.join(dir, 'libcudnn.so.8'), '');
      const libs = await findCudaLibraries({ LD_LIBRARY_PATH: dir });
      expect(libs.cudart).toContain(11);
      expect(libs.cudnn).toContain(8);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('gatherGpuFacts on this machine', () => {
  it('returns well-formed facts and never throws; tfjs-node-style backends are asked for their device', async () => {
    const facts = await gatherGpuFacts({ env: { CUDA_VISIBLE_DEVICES: '-1' }, tfBackend: { isUsingGpuDevice: false } });
    expect(facts.tfUsesGpu).toBe(false);
    expect(facts.cudaVisibleDevices).toBe('-1');
    expect(facts.gpus === null || Array.isArray(facts.gpus)).toBe(true);
    expect(facts.cudartMajors.every(Number.isInteger)).toBe(true);
    const verdict = assessGpu(facts);
    expect(verdict.usable).toBe(false);
    expect(verdict.reason).toContain('CUDA_VISIBLE_DEVICES="-1" hides every GPU');
    const viaBinding = await gatherGpuFacts({ env: {}, tfBackend: { binding: { isUsingGpuDevice: () => true } } });
    expect(viaBinding.tfUsesGpu).toBe(true);
  });
});
