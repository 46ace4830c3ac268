/**
 * A small, strict renderer for the subset of kustomize that deploy/k8s uses: resources, namespace, images,
 * secret/configMap generators (hash suffix disabled), JSON-6902 patches and replacements. Any other field or
 * option is an error, so the test notices when the kustomization grows past what is checked here.
 */
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';

export type KObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; [k: string]: unknown }; [k: string]: unknown };

/** Options of {@link renderKustomization}. */
export interface RenderOptions {
  /** Reads a generator's env file; lets a test use `X.example` when `X` (kept out of git) is absent. Default: read X. */
  readEnvFile?: (path: string) => string;
  /** Edits the parsed kustomization before rendering (to test that N propagates). Default: none. */
  edit?: (k: Record<string, unknown>) => void;
}

const KNOWN_FIELDS = new Set(['apiVersion', 'kind', 'namespace', 'resources', 'images', 'secretGenerator', 'configMapGenerator', 'patches', 'replacements']);
const CLUSTER_SCOPED = new Set(['Namespace', 'PersistentVolume', 'ClusterRole', 'ClusterRoleBinding', 'StorageClass']);

type Selector = { group?: string; version?: string; kind?: string; name?: string };
type JsonPatchOp = { op: 'add' | 'replace' | 'remove'; path: string; value?: unknown };

/** Reads every YAML document of a file (errors on YAML errors). */
export function readYamlDocs(file: string): unknown[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  const out: unknown[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS();
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

function groupOf(apiVersion: string): { group: string; version: string } {
  const i = apiVersion.indexOf('/');
  return i < 0 ? { group: '', version: apiVersion } : { group: apiVersion.slice(0, i), version: apiVersion.slice(i + 1) };
}

export function matches(obj: KObject, sel: Selector): boolean {
  const { group, version } = groupOf(obj.apiVersion);
  return (
    (sel.group === undefined || sel.group === group) &&
    (sel.version === undefined || sel.version === version) &&
    (sel.kind === undefined || sel.kind === obj.kind) &&
    (sel.name === undefined || sel.name === obj.metadata.name)
  );
}

function pointer(path: string): string[] {
  if (!path.startsWith('/')) throw new Error(`JSON patch path '${path}' must start with /`);
  return path
    .slice(1)
    .split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** Applies RFC 6902 add/replace/remove operations in place. */
export function applyJsonPatch(target: unknown, ops: JsonPatchOp[], where: string): void {
  for (const op of ops) {
    const parts = pointer(op.path);
    const last = parts.pop()!;
    let node: unknown = target;
    for (const p of parts) {
      node = Array.isArray(node) ? node[Number(p)] : (node as Record<string, unknown> | undefined)?.[p];
      if (node === undefined || node === null) throw new Error(`${where}: path ${op.path} does not exist`);
    }
    if (Array.isArray(node)) {
      const i = last === '-' ? node.length : Number(last);
      if (!Number.isInteger(i) || i < 0 || i > node.length) throw new Error(`${where}: bad index in ${op.path}`);
      if (op.op === 'add') node.splice(i, 0, structuredClone(op.value));
      else if (i >= node.length) throw new Error(`${where}: ${op.path} does not exist`);
      else if (op.op === 'replace') node[i] = structuredClone(op.value);
      else node.splice(i, 1);
    } else {
      const rec = node as Record<string, unknown>;
      if (op.op !== 'add' && !(last in rec)) throw new Error(`${where}: ${op.path} does not exist (${op.op})`);
      if (op.op === 'remove') delete rec[last];
      else rec[last] = structuredClone(op.value);
    }
  }
}

/** Splits a kustomize field path (`a.b.[name=x].c`, `a.b.0`) into steps. */
function fieldSteps(path: string): string[] {
  const steps: string[] = [];
  for (const m of path.matchAll(/\[[^\]]*\]|[^.[\]]+/g)) steps.push(m[0]);
  return steps;
}

function step(node: unknown, s: string): unknown {
  const sel = /^\[([^=]+)=(.*)\]$/.exec(s);
  if (sel) return Array.isArray(node) ? node.find((e) => (e as Record<string, unknown>)?.[sel[1]!] === sel[2]) : undefined;
  if (Array.isArray(node) && /^\d+$/.test(s)) return node[Number(s)];
  return (node as Record<string, unknown> | undefined)?.[s];
}

/** Reads a field by kustomize field path. */
export function getField(obj: unknown, path: string): unknown {
  let node = obj;
  for (const s of fieldSteps(path)) node = step(node, s);
  return node;
}

function setField(obj: unknown, path: string, value: unknown, where: string): void {
  const steps = fieldSteps(path);
  const last = steps.pop()!;
  let node = obj;
  for (const s of steps) {
    node = step(node, s);
    if (node === undefined) throw new Error(`${where}: field path ${path} does not exist`);
  }
  if (Array.isArray(node) || typeof node !== 'object' || node === null || !(last in node)) throw new Error(`${where}: field ${path} does not exist`);
  (node as Record<string, unknown>)[last] = structuredClone(value);
}

function parseEnvFile(text: string, where: string): Record<string, string> {
  const out: Record<string, string> = {};
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`${where}:${i + 1}: not KEY=VALUE`);
    out[line.slice(0, eq)] = line.slice(eq + 1);
  });
  return out;
}

type Generator = { name: string; literals?: string[]; envs?: string[]; options?: { disableNameSuffixHash?: boolean }; [k: string]: unknown };

function generatorData(gen: Generator, dir: string, readEnvFile: (p: string) => string): Record<string, string> {
  const extra = Object.keys(gen).filter((k) => !['name', 'literals', 'envs', 'options'].includes(k));
  if (extra.length > 0) throw new Error(`generator ${gen.name}: unsupported fields ${extra.join(', ')}`);
  if (gen.options?.disableNameSuffixHash !== true) throw new Error(`generator ${gen.name}: set options.disableNameSuffixHash (stable names are referenced)`);
  const data: Record<string, string> = {};
  for (const lit of gen.literals ?? []) {
    const eq = lit.indexOf('=');
    if (eq <= 0) throw new Error(`generator ${gen.name}: literal '${lit}' is not KEY=VALUE`);
    data[lit.slice(0, eq)] = lit.slice(eq + 1);
  }
  for (const env of gen.envs ?? []) Object.assign(data, parseEnvFile(readEnvFile(join(dir, env)), env));
  return data;
}

/** Renders `dir/kustomization.yaml` into the list of objects `kubectl apply -k dir` would send. */
export function renderKustomization(dir: string, options: RenderOptions = {}): KObject[] {
  const k = parseYaml(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')) as Record<string, unknown>;
  options.edit?.(k);
  const unknown = Object.keys(k).filter((f) => !KNOWN_FIELDS.has(f));
  if (unknown.length > 0) throw new Error(`kustomization: fields not covered by the test renderer: ${unknown.join(', ')}`);
  if (k.apiVersion !== 'kustomize.config.k8s.io/v1beta1' || k.kind !== 'Kustomization') throw new Error('kustomization: wrong apiVersion/kind');
  const readEnvFile = options.readEnvFile ?? ((p: string) => readFileSync(p, 'utf8'));

  const objects: KObject[] = [];
  for (const res of (k.resources as string[] | undefined) ?? []) {
    const file = join(dir, res);
    if (!existsSync(file)) throw new Error(`kustomization: resource ${res} does not exist`);
    for (const doc of readYamlDocs(file)) objects.push(doc as KObject);
  }
  for (const gen of (k.configMapGenerator as Generator[] | undefined) ?? []) {
    objects.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: gen.name }, data: generatorData(gen, dir, readEnvFile) });
  }
  for (const gen of (k.secretGenerator as Generator[] | undefined) ?? []) {
    const data = generatorData(gen, dir, readEnvFile);
    const b64 = Object.fromEntries(Object.entries(data).map(([key, v]) => [key, Buffer.from(v).toString('base64')]));
    objects.push({ apiVersion: 'v1', kind: 'Secret', metadata: { name: gen.name }, type: 'Opaque', data: b64 });
  }

  for (const img of (k.images as { name: string; newName?: string; newTag?: string }[] | undefined) ?? []) {
    for (const obj of objects) {
      const pod = (obj.kind === 'Job' || obj.kind === 'Deployment' || obj.kind === 'StatefulSet' ? getField(obj, 'spec.template.spec') : undefined) as
        | { containers?: { image: string }[]; initContainers?: { image: string }[] }
        | undefined;
      for (const c of [...(pod?.containers ?? []), ...(pod?.initContainers ?? [])]) {
        const [name, tag] = c.image.split(':') as [string, string | undefined];
        if (name !== img.name) continue;
        const newTag = img.newTag ?? tag;
        c.image = `${img.newName ?? name}${newTag ? `:${newTag}` : ''}`;
      }
    }
  }

  for (const p of (k.patches as { target: Selector; patch?: string; path?: string }[] | undefined) ?? []) {
    const text = p.patch ?? (p.path ? readFileSync(join(dir, p.path), 'utf8') : undefined);
    if (text === undefined) throw new Error('kustomization: a patch needs `patch` or `path`');
    const ops = parseYaml(text) as JsonPatchOp[];
    if (!Array.isArray(ops)) throw new Error('kustomization: only JSON-6902 patches (a list of ops) are supported by the test renderer');
    const targets = objects.filter((o) => matches(o, p.target));
    if (targets.length === 0) throw new Error(`kustomization: patch target ${JSON.stringify(p.target)} matches nothing`);
    for (const t of targets) applyJsonPatch(t, ops, `patch on ${t.kind}/${t.metadata.name}`);
  }

  type Replacement = { source: Selector & { fieldPath: string; options?: unknown }; targets: { select: Selector; fieldPaths: string[]; options?: unknown }[] };
  for (const r of (k.replacements as Replacement[] | undefined) ?? []) {
    if (r.source.options !== undefined || r.targets.some((t) => t.options !== undefined))
      throw new Error('kustomization: replacement options are not covered by the test renderer');
    const sources = objects.filter((o) => matches(o, r.source));
    if (sources.length !== 1) throw new Error(`kustomization: replacement source ${JSON.stringify(r.source)} matches ${sources.length} objects`);
    const value = getField(sources[0], r.source.fieldPath);
    if (value === undefined) throw new Error(`kustomization: replacement source field ${r.source.fieldPath} is missing`);
    for (const t of r.targets) {
      const hits = objects.filter((o) => matches(o, t.select));
      if (hits.length === 0) throw new Error(`kustomization: replacement target ${JSON.stringify(t.select)} matches nothing`);
      for (const obj of hits) {
        for (const fp of t.fieldPaths) {
          const old = getField(obj, fp);
          // Kustomize copies the source node; a type change (int into a string field) would break the object.
          if (typeof old !== typeof value)
            throw new Error(`kustomization: replacement writes a ${typeof value} into ${obj.kind}/${obj.metadata.name} ${fp} (a ${typeof old})`);
          setField(obj, fp, value, `replacement into ${obj.kind}/${obj.metadata.name}`);
        }
      }
    }
  }

  const ns = k.namespace as string | undefined;
  if (ns) for (const obj of objects) if (!CLUSTER_SCOPED.has(obj.kind)) obj.metadata.namespace = ns;
  return objects;
}
