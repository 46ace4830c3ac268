import * as fs from 'node:fs';
import * as path from 'node:path';
import { DptrainError } from '../errors.js';

/** One weight array of a layer, as stored in a Keras HDF5 weights file. */
export interface H5Weight {
  /** Name from the group's `weight_names` attribute, e.g. 'block1_conv1/kernel:0' or 'block1_conv1_W_1:0'. */
  name: string;
  shape: number[];
  values: Float32Array;
}

type H5 = typeof import('h5wasm/node').default;
let h5Promise: Promise<H5> | undefined;
async function h5wasm(): Promise<H5> {
  h5Promise ??= (async () => {
    const mod = (await import('h5wasm/node')).default;
    await mod.ready;
    return mod;
  })();
  return h5Promise;
}

function asStrings(v: unknown): string[] {
  const arr = Array.isArray(v) ? v : v === null || v === undefined ? [] : [v];
  return arr.map((x) => (x instanceof Uint8Array ? Buffer.from(x).toString('utf8') : String(x)).replace(/\0+$/, ''));
}

interface AttrHolder {
  attrs: Record<string, unknown>;
  get_attribute(name: string, json: true): unknown;
}

/** Keras' attribute reader: `name`, or chunks `name0`, `name1`, … when the list was too large for one header. */
function readListAttr(g: AttrHolder, name: string): string[] {
  const attrs = g.attrs;
  if (name in attrs) return asStrings(g.get_attribute(name, true));
  const out: string[] = [];
  for (let i = 0; `${name}${i}` in attrs; i++) out.push(...asStrings(g.get_attribute(`${name}${i}`, true)));
  return out;
}

/**
 * Read a Keras HDF5 weights file (`model.save_weights` / the keras-applications notop files): the root (or its
 * `model_weights` group) lists `layer_names`; each layer group lists `weight_names`, which are dataset paths inside
 * that group, in the layer's weight order (kernel, bias). Returns layer name → weights in that order.
 */
export async function readKerasH5(file: string): Promise<Map<string, H5Weight[]>> {
  if (!fs.existsSync(file)) throw new DptrainError('E_WEIGHTS', `weights file not found: ${file}`);
  const h5 = await h5wasm();
  let f: InstanceType<H5['File']>;
  try {
    f = new h5.File(path.resolve(file), 'r');
  } catch (e) {
    throw new DptrainError('E_WEIGHTS', `cannot open ${file} as HDF5: ${(e as Error).message}`, undefined, { cause: e });
  }
  try {
    return readLayers(f, file);
  } catch (e) {
    if (e instanceof DptrainError) throw e;
    throw new DptrainError('E_WEIGHTS', `cannot read ${file} as a Keras HDF5 weights file: ${(e as Error).message}`, undefined, { cause: e });
  } finally {
    try {
      f.close();
    } catch {
      // already closed / never opened properly
    }
  }
}

function readLayers(f: InstanceType<H5['File']>, file: string): Map<string, H5Weight[]> {
  {
    let root: InstanceType<H5['Group']> = f;
    if (f.keys().includes('model_weights')) root = f.get('model_weights') as InstanceType<H5['Group']>;
    const layerNames = readListAttr(root as unknown as AttrHolder, 'layer_names');
    if (layerNames.length === 0) throw new DptrainError('E_WEIGHTS', `${file} has no 'layer_names' attribute: not a Keras weights file`);
    const out = new Map<string, H5Weight[]>();
    for (const layer of layerNames) {
      const g = root.get(layer) as InstanceType<H5['Group']> | null;
      if (!g) throw new DptrainError('E_WEIGHTS', `${file}: layer_names lists ${layer} but there is no such group`);
      const weights: H5Weight[] = [];
      for (const wn of readListAttr(g as unknown as AttrHolder, 'weight_names')) {
        const ds = g.get(wn) as InstanceType<H5['Dataset']> | null;
        if (!ds || !('shape' in ds)) throw new DptrainError('E_WEIGHTS', `${file}: layer ${layer} lists weight ${wn} but it is missing`);
        const v = ds.value;
        const values = v instanceof Float32Array ? v : Float32Array.from(v as ArrayLike<number>);
        weights.push({ name: wn, shape: [...(ds.shape ?? [])], values });
      }
      out.set(layer, weights);
    }
    return out;
  }
}

/** One layer to write with writeKerasH5. */
export interface H5Layer {
  name: string;
  /** Weights in order (kernel, bias); names default to `<layer>/kernel:0`, `<layer>/bias:0`. */
  weights: H5Weight[];
}

type H5Group = InstanceType<H5['Group']>;
type H5File = InstanceType<H5['File']>;

/** Fixed-length byte strings, as Keras 2 writes its name lists. */
function fixedStrings(names: string[]): [string[], string] {
  return [names, `S${Math.max(1, ...names.map((n) => Buffer.byteLength(n)))}`];
}

/** `layer_names` on `parent`, one group per layer with `weight_names`, datasets at `<layer>/<weight name>`. */
function writeLayerGroups(parent: H5Group | H5File, layers: H5Layer[], attrs: { backend: string; kerasVersion: string }): void {
  const [ln, lt] = fixedStrings(layers.map((l) => l.name));
  parent.create_attribute('layer_names', ln, [ln.length], lt);
  parent.create_attribute('backend', attrs.backend);
  parent.create_attribute('keras_version', attrs.kerasVersion);
  for (const layer of layers) {
    const g = parent.create_group(layer.name);
    const names = layer.weights.map((w) => w.name);
    if (names.length > 0) {
      const [wn, wt] = fixedStrings(names);
      g.create_attribute('weight_names', wn, [wn.length], wt);
    } else {
      g.create_attribute('weight_names', [], [0], 'S1');
    }
    for (const w of layer.weights) {
      const parts = w.name.split('/');
      let at = g;
      for (const p of parts.slice(0, -1)) {
        at = (at.keys().includes(p) ? at.get(p) : at.create_group(p)) as H5Group;
      }
      at.create_dataset({ name: parts[parts.length - 1]!, data: w.values, shape: w.shape, dtype: '<f' });
    }
  }
}

async function createH5(file: string): Promise<H5File> {
  const h5 = await h5wasm();
  await fs.promises.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  return new h5.File(path.resolve(file), 'w');
}

/**
 * Write a weights file in the Keras 2 HDF5 layout (`layer_names` on the root as fixed-length byte strings,
 * one group per layer with `weight_names`, datasets at `<layer>/<weight name>`), e.g. for tests.
 */
export async function writeKerasH5(file: string, layers: H5Layer[], attrs: { backend?: string; kerasVersion?: string } = {}): Promise<void> {
  const f = await createH5(file);
  try {
    writeLayerGroups(f, layers, { backend: attrs.backend ?? 'tensorflow', kerasVersion: attrs.kerasVersion ?? '2.2.4' });
  } finally {
    f.close();
  }
}

/** What {@link writeKerasModelH5} writes. */
export interface KerasModelH5 {
  /** The Keras model config (`{class_name, config}`), stored as the JSON attribute `model_config`. */
  modelConfig: { class_name: string; config: unknown };
  /** Every layer of the model in order, weightless ones included (empty `weights`). */
  layers: H5Layer[];
  /** Written as the `keras_version` attributes. */
  kerasVersion: string;
  /** Written as the `backend` attributes. */
  backend: string;
}

/**
 * Write a whole model in the layout of Keras' `model.save('model.h5')` / `ModelCheckpoint`: the root holds
 * `model_config`, `keras_version` and `backend`; the group `model_weights` holds the weights as in
 * {@link writeKerasH5}. No `training_config`: load it with `compile=False`.
 */
export async function writeKerasModelH5(file: string, model: KerasModelH5): Promise<void> {
  const f = await createH5(file);
  try {
    f.create_attribute('model_config', JSON.stringify(model.modelConfig));
    f.create_attribute('keras_version', model.kerasVersion);
    f.create_attribute('backend', model.backend);
    writeLayerGroups(f.create_group('model_weights'), model.layers, { backend: model.backend, kerasVersion: model.kerasVersion });
  } finally {
    f.close();
  }
}
