import type { Optimizer } from "../core/optimizer.ts";
import { decodeModel, type LoadModelOptions, readModelFile } from "../io/model_io.ts";
import { Sequential } from "./sequential.ts";

/** What {@linkcode loadModel} and {@linkcode modelFromBytes} give back. */
export interface LoadedModel {
  /** The model, rebuilt through the registry, with the saved parameters. */
  model: Sequential;
  /** The optimizer with its saved state, when the file holds one. */
  optimizer?: Optimizer;
  /** The file's `__metadata__`, the `chainrule.*` entries included. */
  metadata: Record<string, string>;
}

/**
 * Rebuilds a model from `modelToBytes`'s bytes: each layer through the registry (a kind
 * registered with `registerLayer` loads like a built-in), then the saved parameters copied
 * in, bit for bit. Runs no code from the file, and takes no more memory than a bound derived
 * from the file's size (see docs/saving.md): the architecture's JSON is measured before it is
 * parsed, layers are counted (`maxLayers`) and their nesting bounded (`maxDepth`), and the
 * layers are built under an allocation budget from the tensors the file holds.
 *
 * @throws {SafetensorsError} for a malformed file, a missing, extra or misshapen tensor;
 * `model_too_large` for a model past the limits or declaring more parameters than the file
 * holds; `non_finite` for NaN or ±Infinity weights, unless `{ allowNonFinite: true }` (which
 * loads them with a warning).
 * @throws {RangeError} for a layer or optimizer kind that is not registered, naming it and
 * saying how to register it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Dense, modelFromBytes, modelToBytes, ReLU, Sequential } from "@chainrule/nn";
 *
 * const model = new Sequential([new Dense(2, 3, { seed: 1 }), new ReLU(), new Dense(3, 2)]);
 * const { model: copy } = modelFromBytes(modelToBytes(model));
 * assert.equal(copy.toString(), model.toString());
 * assert.deepEqual(copy.predict([[1, 2]]).data, model.predict([[1, 2]]).data);
 * ```
 */
export function modelFromBytes(bytes: Uint8Array, options: LoadModelOptions = {}): LoadedModel {
  const { model, ...rest } = decodeModel(bytes, "modelFromBytes", options);
  return { model: new Sequential(model.layers), ...rest };
}

/**
 * Loads a model saved with `saveModel` or `model.save` (see {@linkcode modelFromBytes}),
 * first removing the temporary files that killed saves left in its folder over a minute ago.
 * Needs `--allow-read` (and `--allow-write` for the cleaning, which is skipped without it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Adam, Dense, loadModel, saveModel, Sequential } from "@chainrule/nn";
 *
 * const model = new Sequential([new Dense(2, 2, { seed: 3 })]);
 * const path = `${await Deno.makeTempDir()}/model.safetensors`;
 * await saveModel(model, path, { optimizer: new Adam() });
 * const loaded = await loadModel(path);
 * assert.equal(loaded.optimizer?.toString(), "Adam(learningRate=0.001)");
 * assert.deepEqual(loaded.model.params()[0].value.data, model.params()[0].value.data);
 * ```
 */
export async function loadModel(
  path: string,
  options: LoadModelOptions = {},
): Promise<LoadedModel> {
  const { model, ...rest } = await readModelFile(path, options);
  return { model: new Sequential(model.layers), ...rest };
}
