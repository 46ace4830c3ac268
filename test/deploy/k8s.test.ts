/**
 * deploy/k8s: the kustomization is rendered (kustomize-lite), every object is checked against the Kubernetes API
 * types of `kubernetes-models` (schema validator + TypeScript's excess-property check), the objects are checked
 * against each other (selectors, ports, probes, Secret/ConfigMap/PVC references), and every container command
 * line is checked against the real dptrain CLI.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { getField, renderKustomization, type KObject } from './kustomize-lite.testutil.js';
import { typeCheckSets, validateWithModel } from './k8s-types.testutil.js';
import { checkDptrainArgs, expandVars } from './cli-check.testutil.js';

const K8S = join(import.meta.dirname, '..', '..', 'deploy', 'k8s');
/** dptrain.env is kept out of git; render with its template. */
const readEnvFile = (p: string): string => readFileSync(existsSync(p) ? p : `${p}.example`, 'utf8');

type Container = {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: {
    name: string;
    value?: string;
    valueFrom?: { secretKeyRef?: { name: string; key: string }; configMapKeyRef?: { name: string; key: string }; fieldRef?: { fieldPath: string } };
  }[];
  ports?: { name?: string; containerPort: number }[];
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  startupProbe?: { httpGet?: { path: string; port: string | number } };
  volumeMounts?: { name: string; mountPath: string }[];
};
type PodSpec = {
  containers: Container[];
  volumes?: { name: string; persistentVolumeClaim?: { claimName: string }; hostPath?: { path: string } }[];
  restartPolicy?: string;
  affinity?: {
    podAntiAffinity?: {
      requiredDuringSchedulingIgnoredDuringExecution?: { topologyKey: string; labelSelector?: { matchLabels?: Record<string, string> } }[];
    };
  };
};

const find = (objs: KObject[], kind: string, name: string): KObject => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind}/${name} in the rendered kustomization`);
  return o;
};
const podSpec = (o: KObject): PodSpec => getField(o, 'spec.template.spec') as PodSpec;

/** Downward-API fields a container may read, with the value a first pod would see. */
const FIELD_REFS: Record<string, string> = {
  "metadata.annotations['batch.kubernetes.io/job-completion-index']": '0',
  'metadata.name': 'dptrain-worker-0-abcde',
  'metadata.namespace': 'dptrain',
};

/** Resolves a container's env (literal values, Secret, ConfigMap and downward-API references) from the rendered objects. */
function containerEnv(c: Container, objs: KObject[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    const s = e.valueFrom?.secretKeyRef;
    if (s) env[e.name] = Buffer.from((find(objs, 'Secret', s.name).data as Record<string, string>)[s.key]!, 'base64').toString();
    const m = e.valueFrom?.configMapKeyRef;
    if (m) env[e.name] = (find(objs, 'ConfigMap', m.name).data as Record<string, string>)[m.key]!;
    const f = e.valueFrom?.fieldRef;
    if (f) {
      expect(FIELD_REFS[f.fieldPath], `fieldRef ${f.fieldPath}`).toBeDefined();
      env[e.name] = FIELD_REFS[f.fieldPath]!;
    }
  }
  return env;
}

/** The container's dptrain arguments with Kubernetes' $(VAR) expansion applied. */
function dptrainArgs(c: Container, env: Record<string, string>): string[] {
  expect(c.command, `${c.name}: the image's entrypoint (dptrain) runs; only args are given`).toBeUndefined();
  const missing: string[] = [];
  const args = (c.args ?? []).map((a) => expandVars(a, env, missing));
  expect(missing, `${c.name}: $(VAR)s without an env entry`).toEqual([]);
  return args;
}

const flag = (args: string[], name: string): string | undefined => {
  const i = args.indexOf(name);
  return i < 0 ? undefined : args[i + 1];
};

describe('deploy/k8s kustomization', () => {
  let objs: KObject[];
  /** The kustomization with the optional per-node hostPath data patch switched on. */
  let withHostPath: KObject[];
  /** The rendered objects with a misspelt Job field. */
  let misspelt: KObject[];
  /** Type-check diagnostics of the three sets above (one compiler run). */
  let typeErrors: Record<string, string[]>;
  beforeAll(() => {
    objs = renderKustomization(K8S, { readEnvFile });
    withHostPath = renderKustomization(K8S, {
      readEnvFile,
      edit: (k) => {
        (k.patches as unknown[]).push(
          { target: { kind: 'Deployment', name: 'dptrain-coordinator' }, path: 'patches/data-hostpath.yaml' },
          { target: { kind: 'Job', name: 'dptrain-worker' }, path: 'patches/data-hostpath.yaml' },
        );
      },
    });
    misspelt = structuredClone(objs);
    (find(misspelt, 'Job', 'dptrain-worker').spec as Record<string, unknown>).paralelism = 2;
    typeErrors = typeCheckSets({ objs, withHostPath, misspelt });
  });

  it('lists resources, env-file templates and patch files that exist', () => {
    const k = parseYaml(readFileSync(join(K8S, 'kustomization.yaml'), 'utf8')) as { resources: string[]; secretGenerator: { envs?: string[] }[] };
    for (const r of k.resources) expect(existsSync(join(K8S, r)), r).toBe(true);
    for (const g of k.secretGenerator) for (const e of g.envs ?? []) expect(existsSync(join(K8S, `${e}.example`)), `${e}.example`).toBe(true);
    expect(readFileSync(join(K8S, '.gitignore'), 'utf8')).toMatch(/^dptrain\.env$/m);
    const raw = readFileSync(join(K8S, 'kustomization.yaml'), 'utf8');
    for (const m of raw.matchAll(/path:\s*(\S+\.yaml)/g)) expect(existsSync(join(K8S, m[1]!)), m[1]).toBe(true);
    expect(objs.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(
      [
        'ConfigMap/dptrain-cluster',
        'Deployment/dptrain-coordinator',
        'Job/dptrain-worker',
        'Namespace/dptrain',
        'PersistentVolumeClaim/dptrain-data',
        'PersistentVolumeClaim/dptrain-runs',
        'Secret/dptrain-token',
        'Service/dptrain-coordinator',
      ].sort(),
    );
    for (const o of objs) if (o.kind !== 'Namespace') expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe('dptrain');
  });

  it('validates every object with the kubernetes-models schema validator', async () => {
    for (const o of objs) expect(await validateWithModel(o), `${o.kind}/${o.metadata.name}`).toBeUndefined();
  });

  it('type-checks every object against the kubernetes-models interfaces (no unknown fields)', () => {
    expect(typeErrors.objs).toEqual([]);
  });

  it('catches what it should: a misspelt field, a wrong type, a flag the CLI lacks', async () => {
    expect(typeErrors.misspelt).toHaveLength(1);
    expect(typeErrors.misspelt![0]).toMatch(/^Job\/dptrain-worker: .*'"paralelism"' does not exist/);
    const job = structuredClone(find(objs, 'Job', 'dptrain-worker'));
    (job.spec as Record<string, unknown>).completions = '4';
    expect(await validateWithModel(job)).toMatch(/completions must be integer/);
    const res = await checkDptrainArgs(['worker', '--connect', 'ws://x:1', '--gpu-id', '0']);
    expect(res.errors.join('\n')).toMatch(/--gpu-id/);
  });

  it('runs the coordinator as one pod behind a Service, probed on /healthz and /readyz', () => {
    const dep = find(objs, 'Deployment', 'dptrain-coordinator');
    expect(getField(dep, 'spec.replicas')).toBe(1);
    expect(getField(dep, 'spec.strategy.type')).toBe('Recreate');
    const [c] = podSpec(dep).containers;
    const portNames = new Map((c!.ports ?? []).map((p) => [p.name, p.containerPort]));
    expect(c!.livenessProbe?.httpGet?.path).toBe('/healthz');
    expect(c!.readinessProbe?.httpGet?.path).toBe('/readyz');
    for (const probe of [c!.livenessProbe, c!.readinessProbe, c!.startupProbe]) {
      if (probe?.httpGet) expect(portNames.has(String(probe.httpGet.port)), `probe port ${probe.httpGet.port}`).toBe(true);
    }
    expect(c!.resources?.requests?.cpu).toBeDefined();
    expect(c!.resources?.limits?.memory).toBeDefined();

    const svc = find(objs, 'Service', 'dptrain-coordinator');
    const labels = getField(dep, 'spec.template.metadata.labels') as Record<string, string>;
    const selector = getField(svc, 'spec.selector') as Record<string, string>;
    for (const [k, v] of Object.entries(selector)) expect(labels[k], `selector ${k}`).toBe(v);
    expect(getField(dep, 'spec.selector.matchLabels')).toEqual(selector);
    for (const p of getField(svc, 'spec.ports') as { name: string; port: number; targetPort: string }[]) {
      expect(portNames.get(p.targetPort), `service port ${p.name}`).toBe(p.port);
    }
    // Workers must reach the coordinator before /readyz turns ready (that waits for them).
    expect(getField(svc, 'spec.publishNotReadyAddresses')).toBe(true);
  });

  it('runs one agent per node as an Indexed Job: N pods, never two on a node, each with the G GPUs of its node; N and G set once', () => {
    const job = find(objs, 'Job', 'dptrain-worker');
    expect(getField(job, 'spec.completionMode')).toBe('Indexed');
    const n = getField(job, 'spec.completions') as number;
    expect(getField(job, 'spec.parallelism')).toBe(n);
    const [c] = podSpec(job).containers;
    const g = Number(c!.resources?.limits?.['nvidia.com/gpu']);
    expect(g).toBeGreaterThanOrEqual(2);
    expect(Number(c!.resources?.requests?.['nvidia.com/gpu'])).toBe(g);
    expect(podSpec(job).restartPolicy).toBe('OnFailure');
    // one agent per node: anti-affinity on the host name against the Job's own pods
    const anti = podSpec(job).affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? [];
    expect(anti).toHaveLength(1);
    expect(anti[0]!.topologyKey).toBe('kubernetes.io/hostname');
    const podLabels = (getField(job, 'spec.template.metadata.labels') ?? {}) as Record<string, string>;
    for (const [k, v] of Object.entries(anti[0]!.labelSelector?.matchLabels ?? {})) expect(podLabels[k], k).toBe(v);
    // the agent hands one GPU to each worker: the pod must not narrow the GPUs to one
    expect(c!.env?.find((e) => e.name === 'CUDA_VISIBLE_DEVICES')).toBeUndefined();
    // Changing N and G in the kustomization's patch changes completions and parallelism together, and both GPU fields.
    const seven = renderKustomization(K8S, {
      readEnvFile,
      edit: (k) => {
        const patches = k.patches as { target: { kind: string }; patch?: string }[];
        const p = patches.find((x) => x.target.kind === 'Job' && x.patch)!;
        p.patch = p.patch!.replace(/(completions\s+value:\s*)\d+/, '$17').replace(/(gpu\s+value:\s*)\d+/g, '$18');
      },
    });
    const job7 = find(seven, 'Job', 'dptrain-worker');
    expect(getField(job7, 'spec.completions')).toBe(7);
    expect(getField(job7, 'spec.parallelism')).toBe(7);
    expect(Number(podSpec(job7).containers[0]!.resources?.limits?.['nvidia.com/gpu'])).toBe(8);
    expect(Number(podSpec(job7).containers[0]!.resources?.requests?.['nvidia.com/gpu'])).toBe(8);
    const minWorkers = Number((find(objs, 'ConfigMap', 'dptrain-cluster').data as Record<string, string>)['min-workers']);
    expect(minWorkers).toBeGreaterThanOrEqual(1);
    expect(minWorkers).toBeLessThanOrEqual(n);
  });

  it('gives every pod the token from the Secret and its volumes from claims that exist', () => {
    const claims = new Set(objs.filter((o) => o.kind === 'PersistentVolumeClaim').map((o) => o.metadata.name));
    for (const o of [find(objs, 'Deployment', 'dptrain-coordinator'), find(objs, 'Job', 'dptrain-worker')]) {
      const spec = podSpec(o);
      for (const c of spec.containers) {
        const token = c.env?.find((e) => e.name === 'DPTRAIN_TOKEN');
        expect(token?.valueFrom?.secretKeyRef, `${o.kind} DPTRAIN_TOKEN from a Secret`).toEqual({ name: 'dptrain-token', key: 'DPTRAIN_TOKEN' });
        const env = containerEnv(c, objs); // throws on a dangling Secret/ConfigMap reference
        expect(env.DPTRAIN_TOKEN!.length).toBeGreaterThan(0);
        const volumes = new Set((spec.volumes ?? []).map((v) => v.name));
        for (const m of c.volumeMounts ?? []) expect(volumes.has(m.name), `${o.kind} mount ${m.name}`).toBe(true);
      }
      for (const v of spec.volumes ?? []) if (v.persistentVolumeClaim) expect(claims.has(v.persistentVolumeClaim.claimName)).toBe(true);
      expect(spec.containers[0]!.volumeMounts?.find((m) => m.name === 'data')?.mountPath).toBe('/data');
    }
  });

  it('runs valid dptrain command lines (checked against the real CLI), workers pointed at the Service', async () => {
    const dep = find(objs, 'Deployment', 'dptrain-coordinator');
    const coord = podSpec(dep).containers[0]!;
    const coordEnv = containerEnv(coord, objs);
    const coordArgs = dptrainArgs(coord, coordEnv);
    const c = await checkDptrainArgs(coordArgs, { env: coordEnv });
    expect(c.errors, coordArgs.join(' ')).toEqual([]);
    expect(c.command).toBe('coordinator');

    const job = find(objs, 'Job', 'dptrain-worker');
    const worker = podSpec(job).containers[0]!;
    const workerEnv = containerEnv(worker, objs);
    const workerArgs = dptrainArgs(worker, workerEnv);
    const w = await checkDptrainArgs(workerArgs, { env: workerEnv });
    expect(w.errors, workerArgs.join(' ')).toEqual([]);
    expect(w.command).toBe('worker');

    const svc = find(objs, 'Service', 'dptrain-coordinator');
    const wsPort = (getField(svc, 'spec.ports') as { name: string; port: number }[]).find((p) => p.name === 'ws')!.port;
    expect(flag(workerArgs, '--connect')).toBe(`ws://${svc.metadata.name}:${wsPort}`);
    expect(flag(coordArgs, '--listen')).toBe(`0.0.0.0:${wsPort}`);
    expect(flag(coordArgs, '--min-workers')).toBe((find(objs, 'ConfigMap', 'dptrain-cluster').data as Record<string, string>)['min-workers']);
    expect(flag(coordArgs, '--data')).toBe('/data');
    expect(flag(workerArgs, '--data')).toBe('/data');
    // Each index has a stable name of its own.
    expect(flag(workerArgs, '--name')).toBe('gpu-node-0');
    expect(flag(workerArgs, '--nproc-per-node')).toBe('gpu');
    // A restarted coordinator pod resumes the run on the claim; its workers wait for it longer than the default 2 min.
    expect(flag(coordArgs, '--resume')).toBe('/runs/scenes');
    expect(coordArgs).not.toContain('--out');
    expect(coord.volumeMounts?.find((m) => m.name === 'runs')?.mountPath).toBe('/runs');
    expect(Number(flag(workerArgs, '--give-up-after'))).toBeGreaterThan(120);
    expect(getField(dep, 'spec.template.spec.terminationGracePeriodSeconds')).toBeGreaterThanOrEqual(60);
    expect(getField(job, 'spec.completionMode')).toBe('Indexed');
  });

  it('offers a per-node hostPath data patch that applies to the coordinator and the workers', () => {
    for (const o of [find(withHostPath, 'Deployment', 'dptrain-coordinator'), find(withHostPath, 'Job', 'dptrain-worker')]) {
      const data = podSpec(o).volumes!.find((v) => v.name === 'data')!;
      expect(data.hostPath?.path).toBe('/srv/dptrain/scenes');
      expect(data.persistentVolumeClaim).toBeUndefined();
    }
    expect(typeErrors.withHostPath).toEqual([]);
  });
});
