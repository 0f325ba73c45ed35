// Whole models as safetensors files: the architecture as JSON in `__metadata__`, every
// parameter as a tensor named `<index>.<kind>.<param>`, every state tensor a layer lists in
// `buffers()` (BatchNorm's running statistics) as `<index>.<kind>.<buffer>`, optionally the
// optimizer's state.
// Loading rebuilds the layers through the plugin registry and runs no code from the file.
import type { JsonObject } from "../core/json.ts";
import type { Layer, StateTensor } from "../core/layer.ts";
import type { Optimizer } from "../core/optimizer.ts";
import type { Param } from "../core/param.ts";
import { createLayer, createOptimizer } from "../catalog/registry.ts";
import { Chain } from "../core/chain.ts";
import { allocate, AllocationBudgetError, Tensor, withAllocationBudget } from "../core/tensor.ts";
import { TensorReader } from "./_tensor_reader.ts";
import { parseSafetensors } from "./safetensors.ts";
import { encodeSafetensorsChunks, joinChunks } from "./safetensors_writer.ts";
import { readFileBytes, removeStaleTemps, writeFileAtomic } from "./write_file_atomic.ts";

/** Metadata key of the architecture: `{"kind":"Sequential","config":{"layers":[…]}}`. */
export const MODEL_METADATA_KEY = "chainrule.model";
/** Metadata key of the optimizer: `{"kind","config","scalars","slots"}`. */
export const OPTIMIZER_METADATA_KEY = "chainrule.optimizer";
/** Metadata key of the file layout's version (`"1"`). */
export const VERSION_METADATA_KEY = "chainrule.version";
const VERSION = "1";

/** Options of {@linkcode saveModel} and {@linkcode modelToBytes}. */
export interface SaveModelOptions {
  /**
   * Also save this optimizer's kind, config and state (it must implement `getState`), so
   * that training resumes exactly where it stopped.
   */
  optimizer?: Optimizer;
  /** Extra strings for `__metadata__` (keys starting with `chainrule.` are reserved). */
  metadata?: Record<string, string>;
}

/**
 * The most layers a model file may hold, nested ones included; `{ maxLayers }` raises it.
 * Each layer costs memory beyond its parameters (its object, its config), so the count is
 * bounded apart from the tensors.
 */
export const MAX_LAYERS = 10_000;

/** How deep layers may nest in a model file (a Sequential in a Sequential is 2); `{ maxDepth }` changes it. */
export const MAX_MODEL_DEPTH = 32;

// The layers built from a file may allocate this many bytes per element of the file's
// tensors: value and gradient in float64, and a float64 draw of the initial weights, which
// loading then overwrites.
const BUDGET_BYTES_PER_ELEMENT = 24;
// And this much beside, for what a layer allocates besides its parameters.
const BUDGET_SLACK_BYTES = 1 << 20;

/** Options of `loadModel`, `modelFromBytes`, `Sequential.load` and `Sequential.fromBytes`. */
export interface LoadModelOptions {
  /**
   * Load weights that are NaN or ±Infinity (or that overflow the layer's float32) with a
   * warning on the console, instead of refusing the file. Default `false`.
   */
  allowNonFinite?: boolean;
  /** The most layers the file may hold, nested ones included; {@linkcode MAX_LAYERS} by default. */
  maxLayers?: number;
  /** How deep layers may nest; {@linkcode MAX_MODEL_DEPTH} by default. */
  maxDepth?: number;
}

/** A model file's contents, rebuilt: what `loadModel` and `modelFromBytes` wrap. */
export interface DecodedModel {
  /** The model's layers in a chain, rebuilt through the registry, with the saved parameters. */
  model: Chain;
  /** The optimizer with its saved state, when the file holds one. */
  optimizer?: Optimizer;
  /** The file's `__metadata__`, the `chainrule.*` entries included. */
  metadata: Record<string, string>;
}

/** One parameter of a model and where it sits. */
export interface ParamSite {
  /** Layer indices from the model down to the layer that owns the param (`[2]`, or `[1, 0]` inside a nested Sequential). */
  path: number[];
  /** The layers along `path`, outermost first. */
  layers: Layer[];
  /** The parameter. */
  param: Param;
}

/** One state tensor of a model (see `Layer.buffers`) and where it sits. */
export interface BufferSite {
  /** Layer indices from the model down to the layer that owns the tensor. */
  path: number[];
  /** The layers along `path`, outermost first. */
  layers: Layer[];
  /** The state tensor. */
  buffer: StateTensor;
}

function isContainer(layer: Layer): layer is Layer & { layers: Layer[] } {
  return Array.isArray((layer as { layers?: unknown }).layers);
}

function collectSites(
  layers: readonly Layer[],
  path: number[],
  owners: Layer[],
  out: ParamSite[],
  buffers: BufferSite[],
): void {
  layers.forEach((layer, i) => {
    const site = { path: [...path, i], layers: [...owners, layer] };
    if (isContainer(layer)) {
      return collectSites(layer.layers, site.path, site.layers, out, buffers);
    }
    for (const param of layer.params()) out.push({ ...site, param });
    for (const buffer of layer.buffers?.() ?? []) buffers.push({ ...site, buffer });
  });
}

function checkModel(model: Chain, where: string): void {
  if (!model || !Array.isArray(model.layers) || typeof model.params !== "function") {
    throw new TypeError(`${where}: model must be a Sequential, got ${model}`);
  }
}

/**
 * Every parameter of `model` with the indices of the layers that hold it, in
 * `model.params()` order. A layer that holds `layers` (a nested `Sequential`) is walked into.
 *
 * @throws {TypeError} when the walk does not find `model.params()` in order.
 */
export function paramSites(model: Chain, where = "paramSites"): ParamSite[] {
  checkModel(model, where);
  const sites: ParamSite[] = [];
  collectSites(model.layers, [], [], sites, []);
  const params = model.params();
  if (params.length !== sites.length || params.some((param, i) => param !== sites[i].param)) {
    throw new TypeError(
      `${where}: model.params() does not list its layers' params in layer order, so they cannot be named`,
    );
  }
  return sites;
}

/**
 * Every state tensor of `model` (what its layers list in `buffers()`, e.g. BatchNorm's
 * running statistics) with the indices of the layers that hold it, in layer order.
 */
export function bufferSites(model: Chain, where = "bufferSites"): BufferSite[] {
  checkModel(model, where);
  const buffers: BufferSite[] = [];
  collectSites(model.layers, [], [], [], buffers);
  return buffers;
}

function siteName(path: number[], layers: Layer[], name: string): string {
  return [...path.map((index, depth) => `${index}.${layers[depth].kind}`), name].join(".");
}

function checkUnique(names: string[], where: string): void {
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) {
      throw new TypeError(
        `${where}: two tensors are named "${name}"; the params and buffers of a layer need names of their own`,
      );
    }
    seen.add(name);
  }
}

/**
 * The tensor names of `model`'s parameters, in `model.params()` order:
 * `<index>.<kind>.<param>`, e.g. `0.Dense.weights`, `2.Dense.biases` (a nested Sequential at
 * index 1 gives `1.Sequential.0.Dense.weights`).
 *
 * @throws {TypeError} when a layer has two params of the same name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Dense, paramNames, ReLU, Sequential } from "@chainrule/nn";
 *
 * const model = new Sequential([new Dense(2, 4), new ReLU(), new Dense(4, 3)]);
 * assert.deepEqual(paramNames(model), [
 *   "0.Dense.weights",
 *   "0.Dense.biases",
 *   "2.Dense.weights",
 *   "2.Dense.biases",
 * ]);
 * ```
 */
export function paramNames(model: Chain, where = "paramNames"): string[] {
  const names = paramSites(model, where).map(({ path, layers, param }) =>
    siteName(path, layers, param.name)
  );
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) {
      throw new TypeError(
        `${where}: two params are named "${name}"; param names must be unique within a layer`,
      );
    }
    seen.add(name);
  }
  return names;
}

/**
 * The tensor names of `model`'s state tensors (see {@linkcode bufferSites}), in layer
 * order: `<index>.<kind>.<buffer>`, e.g. `1.BatchNorm.runningMean`.
 *
 * @throws {TypeError} when a buffer's name is taken by a param or another buffer of its
 * layer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BatchNorm, bufferNames, Dense, Sequential } from "@chainrule/nn";
 *
 * const model = new Sequential([new Dense(2, 4), new BatchNorm(4)]);
 * assert.deepEqual(bufferNames(model), [
 *   "1.BatchNorm.runningMean",
 *   "1.BatchNorm.runningVar",
 *   "1.BatchNorm.numBatchesTracked",
 * ]);
 * ```
 */
export function bufferNames(model: Chain, where = "bufferNames"): string[] {
  const names = bufferSites(model, where).map(({ path, layers, buffer }) =>
    siteName(path, layers, buffer.name)
  );
  checkUnique([...paramNames(model, where), ...names], where);
  return names;
}

function optimizerTensors(
  optimizer: Optimizer,
  params: Param[],
  names: string[],
  where: string,
): { tensors: [string, Tensor][]; spec: JsonObject } {
  if (typeof optimizer.getState !== "function") {
    throw new TypeError(
      `${where}: optimizer ${optimizer} has no getState(), so its state cannot be saved`,
    );
  }
  const { scalars, slots } = optimizer.getState(params);
  for (const [key, value] of Object.entries(scalars)) {
    if (!Number.isFinite(value)) {
      throw new RangeError(`${where}: optimizer scalar "${key}" is ${value}, not a finite number`);
    }
  }
  const slotNames = Object.keys(slots).sort();
  const tensors: [string, Tensor][] = [];
  for (const slot of slotNames) {
    if (slots[slot].length !== params.length) {
      throw new TypeError(
        `${where}: optimizer slot "${slot}" has ${
          slots[slot].length
        } tensors for ${params.length} params`,
      );
    }
    slots[slot].forEach((tensor, i) => tensors.push([`optimizer.${slot}.${names[i]}`, tensor]));
  }
  const spec = { kind: optimizer.kind, config: optimizer.config(), scalars, slots: slotNames };
  return { tensors, spec };
}

function encodeModel(model: Chain, options: SaveModelOptions, where: string): Uint8Array[] {
  const names = paramNames(model, where);
  const params = model.params();
  const tensors = new Map<string, Tensor>(names.map((name, i) => [name, params[i].value]));
  const buffers = bufferSites(model, where);
  bufferNames(model, where).forEach((name, i) => tensors.set(name, buffers[i].buffer.value));
  const metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(options.metadata ?? {})) {
    if (key.startsWith("chainrule.")) {
      throw new TypeError(`${where}: metadata key "${key}" is reserved (chainrule.*)`);
    }
    metadata[key] = value;
  }
  metadata[VERSION_METADATA_KEY] = VERSION;
  metadata[MODEL_METADATA_KEY] = JSON.stringify({ kind: model.kind, config: model.config() });
  if (options.optimizer) {
    const saved = optimizerTensors(options.optimizer, params, names, where);
    for (const [name, tensor] of saved.tensors) tensors.set(name, tensor);
    metadata[OPTIMIZER_METADATA_KEY] = JSON.stringify(saved.spec);
  }
  return encodeSafetensorsChunks(tensors, metadata, where);
}

// Runs a factory on what the file says, giving its error the loader's context.
function rebuild<T>(build: () => T, where: string, what: string): T {
  try {
    return build();
  } catch (error) {
    const message = `${where}: cannot rebuild the ${what} stored in the file: ${
      (error as Error)?.message ?? error
    }`;
    if (error instanceof RangeError) throw new RangeError(message, { cause: error });
    if (error instanceof TypeError) throw new TypeError(message, { cause: error });
    throw new Error(message, { cause: error });
  }
}

// Copies the file's tensor `name` into `target`, checking its shape and values.
function restore(
  reader: TensorReader,
  name: string,
  target: Tensor,
  options: LoadModelOptions,
  warnings: string[],
): void {
  const source = reader.take(name, target.shape);
  reader.checkFinite(name, source, target.dtype, options.allowNonFinite === true, warnings);
  target.data.set(source);
}

// Counts the layers a model spec holds (any `{ kind: string, config: object }` inside it) and
// how deep they nest, refusing past the limits. The JSON's depth is already bounded, so the
// recursion is too.
function checkLayerCount(
  reader: TensorReader,
  spec: JsonObject,
  maxLayers: number,
  maxDepth: number,
): void {
  let layers = 0;
  const visit = (value: unknown, depth: number): void => {
    if (typeof value !== "object" || value === null) return;
    if (Array.isArray(value)) return value.forEach((item) => visit(item, depth));
    const { kind, config } = value as { kind?: unknown; config?: unknown };
    const isLayer = typeof kind === "string" && typeof config === "object" && config !== null;
    if (isLayer) {
      layers++;
      if (layers > maxLayers) {
        reader.fail(
          "model_too_large",
          `the model holds more than ${maxLayers} layers (maxLayers); pass { maxLayers } to load a larger one`,
        );
      }
      if (depth + 1 > maxDepth) {
        reader.fail(
          "model_too_large",
          `the model nests layers more than ${maxDepth} deep (maxDepth); pass { maxDepth } to load a deeper one`,
        );
      }
    }
    for (const item of Object.values(value)) visit(item, isLayer ? depth + 1 : depth);
  };
  visit(spec, 0);
}

function restoreOptimizer(
  reader: TensorReader,
  params: Param[],
  names: string[],
  options: LoadModelOptions,
  warnings: string[],
): Optimizer | undefined {
  if (reader.metadata[OPTIMIZER_METADATA_KEY] === undefined) return undefined;
  const spec = reader.spec(OPTIMIZER_METADATA_KEY, { maxDepth: 16, maxValues: 100_000 });
  const { scalars, slots } = spec as { scalars?: unknown; slots?: unknown };
  if (
    typeof scalars !== "object" || !scalars || Array.isArray(scalars) ||
    !Object.values(scalars).every(Number.isFinite) ||
    !Array.isArray(slots) || !slots.every((slot) => typeof slot === "string")
  ) {
    reader.fail(
      "model_metadata",
      `__metadata__ "${OPTIMIZER_METADATA_KEY}" needs "scalars" (numbers) and "slots" (names)`,
    );
  }
  const where = reader.where;
  const optimizer = rebuild(() => createOptimizer(spec.kind, spec.config), where, "optimizer");
  if (typeof optimizer.setState !== "function") {
    throw new TypeError(`${where}: optimizer ${optimizer} has no setState() to restore its state`);
  }
  const state: Record<string, Tensor[]> = {};
  for (const slot of slots as string[]) {
    state[slot] = params.map((param, i) => {
      const copy = new Tensor(allocate(param.dtype, param.value.size), param.value.shape);
      restore(reader, `optimizer.${slot}.${names[i]}`, copy, options, warnings);
      return copy;
    });
  }
  rebuild(
    () => optimizer.setState!(params, { scalars: scalars as Record<string, number>, slots: state }),
    where,
    "optimizer state",
  );
  return optimizer;
}

/**
 * Rebuilds the model in `bytes` (see `modelToBytes`): each layer through the registry, then
 * the saved parameters and state tensors copied in, bit for bit, and the optimizer with its
 * state.
 *
 * The file is trusted no more than a safetensors file: its architecture's JSON is measured
 * before it is parsed, its layers counted and their nesting bounded, and the layers are built
 * under an allocation budget derived from the tensors the file holds (see
 * `withAllocationBudget`), so a small file cannot declare a huge layer; weights that are NaN
 * or ±Infinity are refused unless `allowNonFinite` is set.
 */
export function decodeModel(
  bytes: Uint8Array,
  where: string,
  options: LoadModelOptions = {},
): DecodedModel {
  const maxLayers = checkLimit(options.maxLayers, MAX_LAYERS, "maxLayers", where);
  const maxDepth = checkLimit(options.maxDepth, MAX_MODEL_DEPTH, "maxDepth", where);
  const file = parseSafetensors(bytes, where);
  const reader = new TensorReader(file.tensors, file.metadata, where);
  const version = file.metadata[VERSION_METADATA_KEY];
  if (version !== undefined && version !== VERSION) {
    reader.fail(
      "model_metadata",
      `the file's layout is version "${version}"; this chainrule reads version "${VERSION}"`,
    );
  }
  if (file.metadata[MODEL_METADATA_KEY] === undefined) {
    reader.fail(
      "model_metadata",
      `the file has no "${MODEL_METADATA_KEY}" metadata, so it holds weights but no model; ` +
        "read it with readSafetensors, or load weights into a model you build with loadTorchStateDict",
    );
  }
  // A layer's JSON is `{"kind","config":{…"layers":[…]}}` (3 levels per nesting) with a few
  // levels of its own, and a few dozen values.
  const spec = reader.spec(MODEL_METADATA_KEY, {
    maxDepth: 3 * maxDepth + 8,
    maxContainers: 16 * maxLayers + 16,
    maxValues: 64 * maxLayers + 64,
  }, {
    depth: `layers nest at most ${maxDepth} deep (maxDepth)`,
    containers: `at most ${maxLayers} layers (maxLayers)`,
    values: `at most ${maxLayers} layers (maxLayers)`,
  });
  if (spec.kind !== "Sequential") {
    reader.fail("model_metadata", `the file holds a "${spec.kind}", not a Sequential model`);
  }
  checkLayerCount(reader, spec, maxLayers, maxDepth);
  let elements = 0;
  for (const [name, tensor] of file.tensors) {
    if (!name.startsWith("optimizer.")) elements += tensor.data.length;
  }
  const budget = BUDGET_BYTES_PER_ELEMENT * elements + BUDGET_SLACK_BYTES;
  const why = `that the file's ${file.tensors.size} tensors (${elements} elements) allow`;
  let model: Layer;
  try {
    model = withAllocationBudget(
      budget,
      where,
      why,
      () => rebuild(() => createLayer(spec.kind, spec.config), where, "model"),
    );
  } catch (error) {
    if (error instanceof AllocationBudgetError) {
      reader.fail(
        "model_too_large",
        `the model's layers declare more parameters than the file holds: ${
          (error as Error).message.slice(where.length + 2)
        }`,
      );
    }
    throw error;
  }
  if (!(model instanceof Chain)) {
    // Only a third-party factory registered over the built-in "Sequential" gets here.
    return reader.fail("model_metadata", `"${spec.kind}" did not rebuild as a chain of layers`);
  }
  const names = paramNames(model, where);
  const params = model.params();
  const warnings: string[] = [];
  params.forEach((param, i) => restore(reader, names[i], param.value, options, warnings));
  const buffers = bufferSites(model, where);
  bufferNames(model, where).forEach((name, i) => {
    restore(reader, name, buffers[i].buffer.value, options, warnings);
  });
  const optimizer = restoreOptimizer(reader, params, names, options, warnings);
  reader.checkAllUsed();
  if (warnings.length > 0) {
    console.warn(
      `${where}: loaded ${warnings.length} tensors with values that are not finite ` +
        `(allowNonFinite): ${warnings.slice(0, 4).join("; ")}${warnings.length > 4 ? "; …" : ""}`,
    );
  }
  return { model, optimizer, metadata: file.metadata };
}

function checkLimit(value: unknown, fallback: number, name: string, where: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(
      `${where}: ${name} must be a whole number ≥ 1, got ${
        typeof value === "string" ? JSON.stringify(value) : String(value)
      }`,
    );
  }
  return value;
}

/**
 * The model as safetensors bytes: its architecture (each layer's `kind` and `config()`) in
 * `__metadata__["chainrule.model"]`, its parameters as tensors named `<index>.<kind>.<param>`
 * (see {@linkcode paramNames}), its state tensors (BatchNorm's running statistics) as
 * `<index>.<kind>.<buffer>` (see {@linkcode bufferNames}), and with `{ optimizer }` the
 * optimizer's kind, config and state. Needs no permission (works in browsers). Deterministic: the same model gives the
 * same bytes.
 *
 * @throws {TypeError} when a metadata key is reserved or the optimizer cannot give its state.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Dense, modelToBytes, Sequential } from "@chainrule/nn";
 *
 * const model = new Sequential([new Dense(2, 3, { seed: 1 })]);
 * assert.deepEqual(modelToBytes(model), modelToBytes(model));
 * ```
 */
export function modelToBytes(model: Chain, options: SaveModelOptions = {}): Uint8Array {
  return joinChunks(encodeModel(model, options, "modelToBytes"));
}

/**
 * Saves the model (and with `{ optimizer }` its optimizer's state) as a safetensors file,
 * atomically: an interrupted save leaves any previous file at `path` intact. Needs
 * `--allow-read --allow-write`.
 */
export async function saveModel(
  model: Chain,
  path: string,
  options: SaveModelOptions = {},
): Promise<void> {
  await writeFileAtomic(path, encodeModel(model, options, "saveModel"));
}

/**
 * Reads and decodes the model file at `path` (see {@linkcode decodeModel}), first removing
 * the temporary files that killed saves left in its folder (see `removeStaleTemps`).
 */
export async function readModelFile(
  path: string,
  options: LoadModelOptions = {},
): Promise<DecodedModel> {
  const where = `loadModel("${path}")`;
  const bytes = await readFileBytes(path, where);
  await removeStaleTemps(path);
  return decodeModel(bytes, where, options);
}
