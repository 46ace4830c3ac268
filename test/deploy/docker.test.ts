/**
 * deploy/docker: the GPU and CPU Dockerfiles and the one-host compose file. No Docker engine here, so the files
 * are parsed (dockerfile-ast, dockerfile-utils' validator, yaml) and checked for what `docker build` and
 * `docker compose up` rely on; every container command line is checked against the real dptrain CLI.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DockerfileParser, type Dockerfile } from 'dockerfile-ast';
import { validate as lintDockerfile } from 'dockerfile-utils';
import { parse as parseYaml } from 'yaml';
import { checkDptrainArgs, expandVars } from './cli-check.testutil.js';

const ROOT = join(import.meta.dirname, '..', '..');
const DOCKER = join(ROOT, 'deploy', 'docker');
const WORKSPACES = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { workspaces: string[] }).workspaces;

function dockerfile(name: string): { text: string; ast: Dockerfile } {
  const text = readFileSync(join(DOCKER, name), 'utf8');
  return { text, ast: DockerfileParser.parse(text) };
}

/** ARG defaults declared before the first FROM (what `${X}` in a FROM resolves to). */
function globalArgs(ast: Dockerfile): Record<string, string> {
  const out: Record<string, string> = {};
  for (const arg of ast.getInitialARGs()) {
    const prop = arg.getProperty();
    if (prop?.getName()) out[prop.getName()] = prop.getValue() ?? '';
  }
  return out;
}

/** Base image of each stage, ARGs resolved, with the stage name. */
function stages(ast: Dockerfile): { image: string; stage?: string }[] {
  const args = globalArgs(ast);
  return ast.getFROMs().map((f) => ({ image: expandVars(f.getImage() ?? '', args), stage: f.getBuildStage() ?? undefined }));
}

function runLines(ast: Dockerfile): string {
  return ast
    .getInstructions()
    .filter((i) => i.getKeyword() === 'RUN')
    .map((i) => i.getArgumentsContent() ?? '')
    .join('\n');
}

function entrypoint(ast: Dockerfile): string[] {
  const eps = ast.getENTRYPOINTs();
  const last = eps[eps.length - 1];
  if (!last) return [];
  return last.getJSONStrings().map((s) => s.getJSONValue());
}

/** The words after the dptrain script in an exec-form entrypoint + command. */
function dptrainArgs(argv: string[]): string[] | undefined {
  const i = argv.findIndex((w) => /(^|\/)dptrain(\.js)?$/.test(w));
  return i < 0 ? undefined : argv.slice(i + 1);
}

/** Patterns of a .dockerignore file. */
function ignored(name: string): string[] {
  return readFileSync(join(DOCKER, `${name}.dockerignore`), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

describe.each(['gpu.Dockerfile', 'cpu.Dockerfile'])('%s', (name) => {
  const { text, ast } = dockerfile(name);

  it('parses, and the Dockerfile validator finds nothing wrong', () => {
    expect(ast.getInstructions().length).toBeGreaterThan(5);
    const problems = lintDockerfile(text).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
    expect(problems).toEqual([]);
  });

  it('uses Node 20, installs with `npm ci`, and copies every workspace manifest before it', () => {
    const all = stages(ast).map((s) => s.image);
    expect(all.some((img) => /^node:20[.-]/.test(img))).toBe(true);
    const copies = ast.getCOPYs().map((c) => c.getArgumentsContent() ?? '');
    for (const ws of WORKSPACES) expect(copies).toContain(`${ws}/package.json ${ws}/`);
    expect(copies).toContain('package.json package-lock.json ./');
    expect(runLines(ast)).toMatch(/\bnpm ci\b/);
  });

  it('copies only paths that exist in the repository and are not in its .dockerignore', () => {
    const ignore = ignored(name);
    for (const copy of ast.getCOPYs()) {
      if (copy.getFromFlag()) continue; // from another stage or image
      const words = (copy.getArgumentsContent() ?? '').split(/\s+/).filter((w) => !w.startsWith('--'));
      for (const src of words.slice(0, -1)) {
        expect(existsSync(join(ROOT, src)), `COPY source ${src}`).toBe(true);
        expect(ignore, `COPY source ${src} is dockerignored`).not.toContain(src);
      }
    }
  });

  it('has an exec-form entrypoint that runs the dptrain CLI, which exists, and a valid default command', async () => {
    const ep = entrypoint(ast);
    const script = ep.find((w) => w.endsWith('/dptrain.js'));
    expect(script, 'entrypoint runs dptrain.js').toBeDefined();
    const workdir =
      ast
        .getInstructions()
        .filter((i) => i.getKeyword() === 'WORKDIR')
        .pop()
        ?.getArgumentsContent() ?? '';
    expect(existsSync(join(ROOT, script!.replace(`${workdir}/`, '')))).toBe(true);
    const cmd = ast
      .getCMDs()
      .pop()!
      .getJSONStrings()
      .map((s) => s.getJSONValue());
    const res = await checkDptrainArgs(cmd, { allowHelp: true });
    expect(res.errors).toEqual([]);
  });

  it('exposes the coordinator ports and runs as a non-root user', () => {
    const exposed = ast
      .getInstructions()
      .filter((i) => i.getKeyword() === 'EXPOSE')
      .flatMap((i) => i.getArguments().map((a) => a.getValue()));
    expect(exposed).toEqual(expect.arrayContaining(['7420', '9464']));
    const user = ast
      .getInstructions()
      .filter((i) => i.getKeyword() === 'USER')
      .pop()
      ?.getArgumentsContent();
    expect(user).toBeDefined();
    expect(user).not.toBe('root');
  });
});

describe('GPU image', () => {
  const { ast } = dockerfile('gpu.Dockerfile');
  it('runs on the CUDA 11.2 + cuDNN 8 runtime that tfjs-node-gpu 4.22 (libtensorflow 2.9) needs', () => {
    const s = stages(ast);
    const final = s[s.length - 1]!;
    // The final stage is built on the CUDA stage (possibly through intermediate stages).
    const byName = new Map(s.filter((x) => x.stage).map((x) => [x.stage!, x.image]));
    let base = final.image;
    while (byName.has(base)) base = byName.get(base)!;
    expect(base.split('@')[0]).toMatch(/^nvidia\/cuda:11\.2\.\d+-cudnn8-runtime-ubuntu\d+\.\d+$/);
  });
  it('pins the CUDA base by digest: IMAGE@${CUDA_IMAGE_DIGEST}, a build argument without a default', () => {
    const cudaFrom = ast.getFROMs().find((f) => f.getBuildStage() === 'cuda-node')!;
    expect(cudaFrom.getImage()).toBe('${CUDA_IMAGE}@${CUDA_IMAGE_DIGEST}');
    expect(globalArgs(ast).CUDA_IMAGE_DIGEST).toBe('');
  });
  it('fails the build when the optional tfjs-node-gpu did not install', () => {
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string }> };
    const gpu = Object.entries(lock.packages).find(([p]) => p.endsWith('node_modules/@tensorflow/tfjs-node-gpu'));
    const declared = JSON.parse(readFileSync(join(ROOT, 'packages/core/package.json'), 'utf8')) as { optionalDependencies?: Record<string, string> };
    expect(declared.optionalDependencies?.['@tensorflow/tfjs-node-gpu']).toMatch(/^\^?4\.22\./);
    if (gpu) expect(gpu[1].version).toMatch(/^4\.22\./);
    expect(runLines(ast)).toMatch(/tfjs-node-gpu\/lib\/napi-v\*\/tfjs_binding\.node/);
  });
});

describe('CPU image', () => {
  const { ast } = dockerfile('cpu.Dockerfile');
  it('builds on node:20-bookworm-slim with oneDNN for the native backend (dev headers to build, runtime lib to run)', () => {
    const s = stages(ast);
    expect(s.every((x) => x.image === 'node:20-bookworm-slim')).toBe(true);
    const runs = ast
      .getInstructions()
      .map((i) => ({ k: i.getKeyword(), text: i.getArgumentsContent() ?? '' }))
      .reduce<string[][]>((acc, i) => {
        if (i.k === 'FROM') acc.push([]);
        else if (i.k === 'RUN') acc[acc.length - 1]!.push(i.text);
        return acc;
      }, []);
    expect(runs[0]!.join('\n')).toMatch(/libdnnl-dev/);
    // The addon is compiled in the build stage, strictly (a failed build fails the image).
    const build = /node (\S+build-native\.mjs)\b[^\n]*--strict/.exec(runs[0]!.join('\n'));
    expect(build, 'native build step').not.toBeNull();
    expect(existsSync(join(ROOT, build![1]!))).toBe(true);
    expect(runs[runs.length - 1]!.join('\n')).toMatch(/libdnnl\d/);
  });
});

// ---------------------------------------------------------------------------------------------------------------

type ComposeService = {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  env_file?: string[];
  volumes?: string[];
  ports?: string[];
  hostname?: string;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  deploy?: { resources?: { reservations?: { devices?: { driver: string; device_ids?: string[]; count?: number; capabilities: string[] }[] } } };
  [k: string]: unknown;
};
type Compose = {
  name?: string;
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
  secrets?: Record<string, unknown>;
  [k: string]: unknown;
};

const SERVICE_KEYS = new Set([
  'image',
  'build',
  'command',
  'entrypoint',
  'environment',
  'env_file',
  'volumes',
  'ports',
  'depends_on',
  'healthcheck',
  'deploy',
  'restart',
  'shm_size',
  'hostname',
  'secrets',
  'networks',
  'ulimits',
  'ipc',
  'init',
  'user',
  'working_dir',
  'stop_grace_period',
  'labels',
]);

function loadCompose(): Compose {
  return parseYaml(readFileSync(join(DOCKER, 'compose.yaml'), 'utf8'), { merge: true }) as Compose;
}

/** Compose's `${VAR:-default}` interpolation, with the variables unset (their defaults). */
function interpolate(words: string[]): string[] {
  const missing: string[] = [];
  const out = words.map((w) => expandVars(w, {}, missing));
  expect(missing, 'compose variables without a default').toEqual([]);
  return out;
}

function flagValue(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
}

describe('compose.yaml (one host, several GPUs, one agent)', () => {
  const compose = loadCompose();
  const services = Object.entries(compose.services);
  const agents = services.filter(([n]) => n.startsWith('agent'));
  const coordinator = compose.services.coordinator!;

  it('has the compose structure: known top-level and service keys, images with build sections that exist', () => {
    for (const key of Object.keys(compose))
      expect(['name', 'services', 'volumes', 'secrets', 'networks', 'configs'].includes(key) || key.startsWith('x-'), key).toBe(true);
    for (const [name, svc] of services) {
      for (const key of Object.keys(svc)) expect(SERVICE_KEYS.has(key), `${name}.${key}`).toBe(true);
      expect(svc.image, name).toMatch(/^dptrain:(gpu|cpu)$/);
      const ctx = join(DOCKER, svc.build!.context);
      expect(existsSync(join(ctx, svc.build!.dockerfile)), `${name} dockerfile`).toBe(true);
      expect(svc.image!.endsWith(svc.build!.dockerfile.includes('gpu') ? ':gpu' : ':cpu'), `${name} image tag matches its Dockerfile`).toBe(true);
      for (const f of svc.env_file ?? []) expect(existsSync(join(DOCKER, `${f}.example`)), `${f}.example`).toBe(true);
      for (const dep of Object.keys(svc.depends_on ?? {})) expect(compose.services[dep], `${name} depends on ${dep}`).toBeDefined();
      for (const v of svc.volumes ?? []) {
        const src = interpolate([v])[0]!.split(':')[0]!;
        if (!src.startsWith('.') && !src.startsWith('/')) expect(compose.volumes?.[src], `named volume ${src}`).toBeDefined();
      }
    }
  });

  it('gives the agent the GPUs of the host (device_ids) and lets it hand one to each of its workers (--nproc-per-node gpu)', () => {
    expect(agents).toHaveLength(1);
    for (const [name, svc] of agents) {
      const devices = svc.deploy?.resources?.reservations?.devices ?? [];
      expect(devices, name).toHaveLength(1);
      expect(devices[0]!.driver).toBe('nvidia');
      expect(devices[0]!.capabilities).toContain('gpu');
      const ids = devices[0]!.device_ids ?? [];
      expect(ids.length, name).toBeGreaterThanOrEqual(2);
      expect(new Set(ids).size, 'distinct GPUs').toBe(ids.length);
      expect(devices[0]!.count, 'count and device_ids are exclusive').toBeUndefined();
      // the agent sets each worker's CUDA_VISIBLE_DEVICES itself: the container must not narrow it to one
      expect(svc.environment?.CUDA_VISIBLE_DEVICES, name).toBeUndefined();
      expect(flagValue(interpolate(svc.command!), '--nproc-per-node')).toBe('gpu');
      expect(svc.image).toBe('dptrain:gpu');
      expect(svc.hostname, name).toBeDefined();
    }
    expect(coordinator.deploy, 'the coordinator needs no GPU').toBeUndefined();
  });

  it('runs valid dptrain command lines (checked against the real CLI), wired to each other', async () => {
    const token = { DPTRAIN_TOKEN: 'x'.repeat(32) };
    const coordArgs = interpolate(coordinator.command!);
    const c = await checkDptrainArgs(coordArgs, { env: token });
    expect(c.errors, `coordinator: ${coordArgs.join(' ')}`).toEqual([]);
    expect(c.command).toBe('coordinator');
    const listenPort = flagValue(coordArgs, '--listen')!.split(':').pop();
    expect(Number(flagValue(coordArgs, '--min-workers')), 'min-workers = number of agents (one per host)').toBe(agents.length);
    expect(coordinator.ports).toContain(`${listenPort}:${listenPort}`);
    for (const [name, svc] of agents) {
      const args = interpolate(svc.command!);
      const w = await checkDptrainArgs(args, { env: token });
      expect(w.errors, `${name}: ${args.join(' ')}`).toEqual([]);
      expect(w.command).toBe('worker');
      expect(flagValue(args, '--connect')).toBe(`ws://coordinator:${listenPort}`);
      // agents outlive a coordinator restart (the CLI's default gives up after 2 min)
      expect(Number(flagValue(args, '--give-up-after'))).toBeGreaterThan(120);
    }
    // a restarted coordinator continues the run from its checkpoint on the runs volume
    expect(flagValue(coordArgs, '--resume')).toMatch(/^\/runs\//);
    expect(coordArgs).not.toContain('--out');
  });

  it('health-checks the coordinator on /healthz at its metrics address, and the agent waits for it', () => {
    const coordArgs = interpolate(coordinator.command!);
    const metricsPort = flagValue(coordArgs, '--metrics-port');
    expect(metricsPort).toBeDefined();
    expect(coordinator.healthcheck!.test.join(' ')).toContain(`http://127.0.0.1:${metricsPort}/healthz`);
    expect(coordinator.ports).toContain(`${metricsPort}:${metricsPort}`);
    for (const [, svc] of agents) expect(svc.depends_on?.coordinator?.condition).toBe('service_healthy');
  });

  it('keeps the token out of the file: env file (template in git, real one ignored)', () => {
    const raw = readFileSync(join(DOCKER, 'compose.yaml'), 'utf8');
    expect(raw).not.toMatch(/DPTRAIN_TOKEN\s*[:=]/);
    for (const [, svc] of services) expect(svc.env_file).toEqual(['dptrain.env']);
    expect(readFileSync(join(DOCKER, 'dptrain.env.example'), 'utf8')).toMatch(/^DPTRAIN_TOKEN=/m);
    expect(readFileSync(join(DOCKER, '.gitignore'), 'utf8')).toMatch(/^dptrain\.env$/m);
  });
});
