import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { ClusterServer } from '../../packages/coordinator/src/cluster/server.js';
import { connectAndAuth } from '../../packages/client/src/connect.js';
import { applyMemoryGrowth } from '../../packages/core/src/backend/memory-growth.js';
import { preflightTfjsNodeGpu, visibleGpus } from '../../packages/core/src/backend/gpu-preflight.js';
import { parseNvidiaSmi, NVIDIA_SMI_FIELDS } from '../../packages/core/src/backend/nvidia-smi.js';
import { isDptrainError, parseRunConfig } from '@dptrain/core';
import { fakeNvidiaSmiDir, THREE_GPUS } from './fake-nvidia-smi.testutil.js';
import { processesMentioning } from '../helpers/processes.testutil.js';

const run = promisify(execFile);
const root = path.resolve(__dirname, '../..');
const bin = path.join(root, 'packages/cli/bin/dptrain.js');
const gpus = parseNvidiaSmi(THREE_GPUS.join('\n'), NVIDIA_SMI_FIELDS);

/** `dptrain worker --backend tensorflow-gpu` against a closed port, PATH = only the stand-in nvidia-smi. */
async function gpuWorker(smiDir: string, env: Record<string, string> = {}): Promise<{ out: string; code: number }> {
  const args = [bin, 'worker', '--connect', 'ws://127.0.0.1:9', '--backend', 'tensorflow-gpu', '--token', 't'];
  try {
    const r = await run(process.execPath, args, { cwd: root, timeout: 120_000, env: { ...process.env, PATH: smiDir, ...env } });
    return { out: r.stdout + r.stderr, code: 0 };
  } catch (e) {
    const err = e as { stdout: string; stderr: string; code: number };
    return { out: err.stdout + err.stderr, code: err.code };
  } finally {
    expect(processesMentioning(smiDir)).toEqual([]);
  }
}

describe('the tensorflow-gpu check at worker start (real worker processes, stand-in nvidia-smi)', () => {
  it('refuses a Blackwell GPU with E_BACKEND_GPU_UNSUPPORTED naming it, before loading TensorFlow', async () => {
    const r = await gpuWorker(fakeNvidiaSmiDir(THREE_GPUS), { CUDA_VISIBLE_DEVICES: '2' });
    expect(r.code).not.toBe(0);
    expect(r.out).toContain('[E_BACKEND_GPU_UNSUPPORTED] GPU 2 NVIDIA B200: compute capability 10.0');
    expect(r.out).not.toContain('tfjs-node-gpu is not installed');
  });
  it('warns on a Hopper GPU (PTX JIT, first start long) and goes on loading', async () => {
    const r = await gpuWorker(fakeNvidiaSmiDir(THREE_GPUS), { CUDA_VISIBLE_DEVICES: '1' });
    expect(r.out).toMatch(/dptrain worker: GPU 1 NVIDIA H100 80GB HBM3: compute capability 9\.0: .*JIT-compiles .*30 minutes/);
    expect(r.out).not.toContain('E_BACKEND_GPU_UNSUPPORTED');
    // here tfjs-node-gpu is absent: the load itself then fails, after the warning
    if (r.code !== 0) expect(r.out).toMatch(/E_BACKEND_UNAVAILABLE|E_BACKEND_NO_GPU/);
  });
  it('sets TF_FORCE_GPU_ALLOW_GROWTH when several local workers share the GPU, and says so; not when it is set', async () => {
    const shared = await gpuWorker(fakeNvidiaSmiDir(THREE_GPUS), { CUDA_VISIBLE_DEVICES: '0', DPTRAIN_LOCAL_WORKERS: '2' });
    expect(shared.out).toContain('dptrain worker: set TF_FORCE_GPU_ALLOW_GROWTH=true (2 local workers share');
    const busy = await gpuWorker(fakeNvidiaSmiDir(THREE_GPUS, { apps: [4242] }), { CUDA_VISIBLE_DEVICES: '0' });
    expect(busy.out).toContain('set TF_FORCE_GPU_ALLOW_GROWTH=true (1 other process(es) already compute on the GPU)');
    const preset = await gpuWorker(fakeNvidiaSmiDir(THREE_GPUS), { CUDA_VISIBLE_DEVICES: '0', DPTRAIN_LOCAL_WORKERS: '2', TF_FORCE_GPU_ALLOW_GROWTH: 'false' });
    expect(preset.out).not.toContain('TF_FORCE_GPU_ALLOW_GROWTH');
  });
});

describe('preflight and memory growth (pure)', () => {
  it('judges only the GPUs CUDA_VISIBLE_DEVICES leaves visible; all of them when it is unset', async () => {
    expect(visibleGpus(gpus, '1,0').map((g) => g.index)).toEqual([1, 0]);
    expect(visibleGpus(gpus, undefined)).toHaveLength(3);
    expect(visibleGpus(gpus, '5')).toEqual([]);
    const a100 = await preflightTfjsNodeGpu({ env: { CUDA_VISIBLE_DEVICES: '0' }, gpus, otherGpuProcesses: 0 });
    expect(a100).toEqual({ support: { name: 'NVIDIA A100-SXM4-80GB', computeCapability: '8.0', tfjsNodeGpu: 'native' }, notes: [] });
    const h100 = await preflightTfjsNodeGpu({ env: { CUDA_VISIBLE_DEVICES: '0,1' }, gpus, otherGpuProcesses: 0 });
    expect(h100.support?.tfjsNodeGpu).toBe('ptx-jit');
    expect(h100.notes).toHaveLength(1);
    await expect(preflightTfjsNodeGpu({ env: {}, gpus, otherGpuProcesses: 0 })).rejects.toSatisfy((e: unknown) =>
      isDptrainError(e, 'E_BACKEND_GPU_UNSUPPORTED'),
    );
    expect(await preflightTfjsNodeGpu({ env: {}, gpus: null })).toEqual({ support: null, notes: [] });
  });
  it('memory growth only when unset and shared', () => {
    const env: NodeJS.ProcessEnv = {};
    expect(applyMemoryGrowth({ env, otherGpuProcesses: 0 })).toEqual({ set: false, message: null });
    expect(env.TF_FORCE_GPU_ALLOW_GROWTH).toBeUndefined();
    expect(applyMemoryGrowth({ env: { DPTRAIN_LOCAL_WORKERS: '1' }, otherGpuProcesses: 0 }).set).toBe(false);
    expect(applyMemoryGrowth({ env, otherGpuProcesses: 2 }).set).toBe(true);
    expect(env.TF_FORCE_GPU_ALLOW_GROWTH).toBe('true');
    expect(applyMemoryGrowth({ env: { TF_FORCE_GPU_ALLOW_GROWTH: 'false', DPTRAIN_LOCAL_WORKERS: '4' }, otherGpuProcesses: 1 }).set).toBe(false);
  });
});

describe('the verdict travels with the join', () => {
  it("a worker's gpu (name, compute capability, verdict) is in its info and GET /status", async () => {
    // the references are given: the coordinator would otherwise hash a full VGG16 base of its own
    const server = new ClusterServer({ token: 'tok', config: parseRunConfig({ dataDir: '/nonexistent' }), baseHash: 'b', datasetHash: 'd' });
    const url = await server.listen();
    try {
      const conn = await connectAndAuth({ url, token: 'tok', role: 'worker' });
      const joined = new Promise<void>((r) => server.onWorkerJoined(r));
      const gpu = { name: 'NVIDIA H100 80GB HBM3', computeCapability: '9.0', tfjsNodeGpu: 'ptx-jit' as const };
      conn.send({ type: 'join', backend: 'tensorflow-gpu', device: 'GPU 0', batchCapacity: 8, host: 'h', baseHash: 'b', datasetHash: 'd', gpu });
      await joined;
      expect(server.workers[0]!.info!.gpu).toEqual(gpu);
      const status = (await (await fetch(url.replace('ws', 'http') + '/status')).json()) as { workers: { gpu?: unknown }[] };
      expect(status.workers[0]!.gpu).toEqual(gpu);
      conn.ws.close();
    } finally {
      await server.close();
    }
  });
});
