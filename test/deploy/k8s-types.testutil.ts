/**
 * Checks Kubernetes objects against the API types of `kubernetes-models` two ways:
 * - at run time with the model's JSON-schema validator (`new Deployment(obj).validate()`: types, enums, required);
 * - with the TypeScript compiler against the model's interfaces (`obj satisfies IDeployment`), which also rejects
 *   fields the API does not have — a misspelt field passes the JSON schemas (they allow extra properties) but
 *   not TypeScript's excess-property check.
 */
import ts from 'typescript';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KObject } from './kustomize-lite.testutil.js';

type ModelClass = new (data: unknown) => { validate(): void };

/** apiVersion/kind → kubernetes-models module path and export name. */
const MODELS: Record<string, { module: string; name: string }> = {
  'v1/Namespace': { module: 'kubernetes-models/v1/Namespace', name: 'Namespace' },
  'v1/Service': { module: 'kubernetes-models/v1/Service', name: 'Service' },
  'v1/Secret': { module: 'kubernetes-models/v1/Secret', name: 'Secret' },
  'v1/ConfigMap': { module: 'kubernetes-models/v1/ConfigMap', name: 'ConfigMap' },
  'v1/PersistentVolumeClaim': { module: 'kubernetes-models/v1/PersistentVolumeClaim', name: 'PersistentVolumeClaim' },
  'apps/v1/Deployment': { module: 'kubernetes-models/apps/v1/Deployment', name: 'Deployment' },
  'apps/v1/StatefulSet': { module: 'kubernetes-models/apps/v1/StatefulSet', name: 'StatefulSet' },
  'batch/v1/Job': { module: 'kubernetes-models/batch/v1/Job', name: 'Job' },
};

function modelOf(obj: KObject): { module: string; name: string } {
  const m = MODELS[`${obj.apiVersion}/${obj.kind}`];
  if (!m) throw new Error(`no kubernetes-models type registered for ${obj.apiVersion} ${obj.kind}`);
  return m;
}

/** Runs the model's schema validator; returns the error message or undefined. */
export async function validateWithModel(obj: KObject): Promise<string | undefined> {
  const { module, name } = modelOf(obj);
  const mod = (await import(module)) as Record<string, ModelClass>;
  const Model = mod[name]!;
  try {
    new Model(obj).validate();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

const HERE = fileURLToPath(new URL('.', import.meta.url));
/** The previous compiler run: its parsed library and kubernetes-models files are reused by the next one. */
let previous: ts.Program | undefined;

/**
 * Type-checks several sets of objects against their `I<Kind>` interfaces in one compiler run (loading the
 * compiler's and the models' declarations is the slow part).
 * @returns per set, one message per diagnostic, prefixed with the object's kind/name.
 */
export function typeCheckSets(sets: Record<string, KObject[]>): Record<string, string[]> {
  const file = join(HERE, '__k8s_objects_check.ts');
  const lines: string[] = [];
  const owners: { line: number; set: string; label: string }[] = [];
  const imports = new Set<string>();
  let i = 0;
  for (const [set, objects] of Object.entries(sets)) {
    for (const obj of objects) {
      const { module, name } = modelOf(obj);
      imports.add(`import type { I${name} } from '${module}';`);
      const code = `export const o${i++} = ${JSON.stringify(obj, null, 1)} satisfies I${name};`;
      owners.push({ line: lines.length + 1, set, label: `${obj.kind}/${obj.metadata.name}` });
      lines.push(...code.split('\n'));
    }
  }
  const header = [...imports];
  const source = [...header, ...lines].join('\n');
  const offset = header.length;

  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    // ES5's lib is all the object literals need, and 4x faster to load than the default one.
    lib: ['lib.es5.d.ts'],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, onError, create) =>
    name === file ? ts.createSourceFile(name, source, lang, true) : getSourceFile(name, lang, onError, create);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === file || fileExists(name);
  const readFile = host.readFile.bind(host);
  host.readFile = (name) => (name === file ? source : readFile(name));

  const program = ts.createProgram([file], options, host, previous);
  previous = program;
  const diagnostics = [...program.getSyntacticDiagnostics(), ...program.getSemanticDiagnostics()];
  const out: Record<string, string[]> = Object.fromEntries(Object.keys(sets).map((k) => [k, []]));
  for (const d of diagnostics) {
    const msg = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (!d.file || d.start === undefined) {
      for (const k of Object.keys(out)) out[k]!.push(msg);
      continue;
    }
    const { line } = d.file.getLineAndCharacterOfPosition(d.start);
    const codeLine = line + 1 - offset;
    // Each object is one block of lines; find the block that holds the line.
    let owner: (typeof owners)[number] | undefined;
    for (const o of owners) if (o.line <= codeLine) owner = o;
    const text = source.split('\n')[line]?.trim() ?? '';
    const entry = `${owner?.label ?? 'imports'}: ${msg} (at: ${text.slice(0, 80)})`;
    if (owner) out[owner.set]!.push(entry);
    else for (const k of Object.keys(out)) out[k]!.push(entry);
  }
  return out;
}

/** Type-checks one set of objects; see {@link typeCheckSets}. */
export function typeCheckObjects(objects: KObject[]): string[] {
  return typeCheckSets({ objects }).objects!;
}
