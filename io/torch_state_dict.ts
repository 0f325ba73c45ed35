// PyTorch's names for a model's parameters, so weights move between chainrule and
// `torch.nn.Sequential` through a safetensors file.
import type { Chain } from "../core/chain.ts";
import type { Layer } from "../core/layer.ts";
import { type FloatArray, Tensor } from "../core/tensor.ts";
import { bufferSites, paramSites } from "./model_io.ts";
import { TensorReader } from "./_tensor_reader.ts";
import type { TensorSource } from "./safetensors.ts";

interface TorchEntry {
  name: string;
  transpose: boolean; // a 2-D [in, out] tensor stored as [out, in]
  value: Tensor;
}

// The PyTorch name a layer gives one of its params or buffers (see `Layer.torchNames`).
function torchName(
  layer: Layer,
  path: number[],
  role: "param" | "buffer",
  name: string,
  value: Tensor,
  where: string,
): TorchEntry {
  const names = layer.torchNames?.();
  const mapped = names && Object.hasOwn(names, name) ? names[name] : undefined;
  if (!mapped) {
    const known = names
      ? `its torchNames() maps ${Object.keys(names).map((key) => `"${key}"`).join(", ")}`
      : "it has no torchNames()";
    throw new TypeError(
      `${where}: ${role} "${name}" (shape [${value.shape}]) of layer ${
        path.join(".")
      } (${layer.kind}) ` +
        `has no PyTorch name; ${known}`,
    );
  }
  const transpose = mapped.transpose === true;
  if (transpose && value.rank !== 2) {
    throw new TypeError(
      `${where}: "${name}" of layer ${path.join(".")} (${layer.kind}) is marked transposed ` +
        `but has shape [${value.shape}], not 2-D`,
    );
  }
  return { name: `${path.join(".")}.${mapped.torch}`, transpose, value };
}

// PyTorch's name for every param and buffer of `model`, in the order state_dict() lists
// them: per layer, its params, then its buffers.
function torchEntries(model: Chain, where: string): TorchEntry[] {
  const entries: (TorchEntry & { path: number[] })[] = [];
  for (const { param, path, layers } of paramSites(model, where)) {
    entries.push({
      ...torchName(layers.at(-1)!, path, "param", param.name, param.value, where),
      path,
    });
  }
  for (const { buffer, path, layers } of bufferSites(model, where)) {
    entries.push({
      ...torchName(layers.at(-1)!, path, "buffer", buffer.name, buffer.value, where),
      path,
    });
  }
  // Layer by layer, each layer's params before its buffers, as state_dict() lists them.
  entries.sort((a, b) => {
    for (let i = 0; i < Math.min(a.path.length, b.path.length); i++) {
      if (a.path[i] !== b.path[i]) return a.path[i] - b.path[i];
    }
    return a.path.length - b.path.length;
  });
  const seen = new Set<string>();
  for (const { name } of entries) {
    if (seen.has(name)) {
      throw new TypeError(`${where}: two tensors of the model map to the PyTorch name "${name}"`);
    }
    seen.add(name);
  }
  return entries;
}

// [rows, cols] row-major → [cols, rows] row-major
function transpose(data: ArrayLike<number>, out: FloatArray, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const rowOffset = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[rowOffset + c];
  }
}

/**
 * The model's parameters and state under the names `torch.nn.Sequential.state_dict()` uses
 * for the same architecture: a `Dense` gives `<index>.weight` (transposed to `[out, in]`, as
 * `nn.Linear` keeps it) and `<index>.bias`; a `Conv2D` gives `<index>.weight`
 * `[out, in, kh, kw]` (no transpose: the same layout) and `<index>.bias`; a `BatchNorm` gives
 * `<index>.weight` (gamma), `<index>.bias` (beta), `<index>.running_mean`,
 * `<index>.running_var` and `<index>.num_batches_tracked` (a float64 scalar here; PyTorch's
 * `load_state_dict` converts it to its int64). PyTorch counts every module, activations included, exactly as chainrule
 * counts layers, so `Dense(2,64) → ReLU → Dense(64,3)` gives `0.weight`, `0.bias`,
 * `2.weight`, `2.bias`, which `nn.Sequential(nn.Linear(2,64), nn.ReLU(), nn.Linear(64,3))`
 * loads with `load_state_dict(safetensors.torch.load_file(path))`. A nested Sequential at
 * index 1 gives `1.0.weight`, as in PyTorch. The tensors are copies.
 *
 * @throws {TypeError} for a parameter or state tensor that has no PyTorch name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Dense, encodeSafetensors, ReLU, Sequential, toTorchStateDict } from "@chainrule/nn";
 *
 * const model = new Sequential([new Dense(2, 3, { weights: [[1, 2, 3], [4, 5, 6]] }), new ReLU()]);
 * const state = toTorchStateDict(model);
 * assert.deepEqual([...state.keys()], ["0.weight", "0.bias"]);
 * assert.deepEqual(state.get("0.weight")!.toArray(), [[1, 4], [2, 5], [3, 6]]);
 * const bytes = encodeSafetensors(state); // for safetensors.torch.load_file
 * assert.ok(bytes.length > 0);
 * ```
 */
export function toTorchStateDict(model: Chain): Map<string, Tensor> {
  const state = new Map<string, Tensor>();
  for (const { name, transpose: flip, value } of torchEntries(model, "toTorchStateDict")) {
    if (!flip) {
      state.set(name, value.clone());
      continue;
    }
    const [rows, cols] = value.shape;
    const out = Tensor.zeros([cols, rows], { dtype: value.dtype });
    transpose(value.data, out.data, rows, cols);
    state.set(name, out);
  }
  return state;
}

/**
 * Copies a PyTorch `nn.Sequential` state dict (as read from a safetensors file PyTorch
 * wrote, e.g. `decodeSafetensors(bytes).tensors`) into a model of the same architecture,
 * transposing each `Dense` weight back to `[in, out]` (see {@linkcode toTorchStateDict} for
 * the names). Strict, like PyTorch's default: every name must be there with the right shape,
 * and no other. Any float dtype is accepted and converted to the model's
 * (`num_batches_tracked` may be an integer, as PyTorch saves it).
 *
 * Values that are NaN or ±Infinity (or that overflow a float32 model) are refused, unless
 * `{ allowNonFinite: true }`, which loads them with a warning.
 *
 * @throws {SafetensorsError} for a missing, extra, misshapen or non-float tensor, or one
 * holding NaN or ±Infinity (code `non_finite`).
 * @throws {TypeError} for a parameter or state tensor of the model that has no PyTorch name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Dense, loadTorchStateDict, Sequential, Tensor } from "@chainrule/nn";
 *
 * const model = new Sequential([new Dense(2, 1)]);
 * loadTorchStateDict(model, new Map([
 *   ["0.weight", Tensor.from([[3, 4]])], // nn.Linear(2, 1).weight is [1, 2]
 *   ["0.bias", Tensor.from([0.5])],
 * ]));
 * assert.deepEqual(model.predict([[1, 1]]).toArray(), [[7.5]]);
 * ```
 */
export function loadTorchStateDict(
  model: Chain,
  stateDict: ReadonlyMap<string, TensorSource>,
  options: { allowNonFinite?: boolean } = {},
): void {
  const where = "loadTorchStateDict";
  if (!(stateDict instanceof Map)) {
    throw new TypeError(`${where}: stateDict must be a Map of name → tensor, got ${stateDict}`);
  }
  const reader = new TensorReader(stateDict, {}, where);
  // Everything is checked before the first tensor changes.
  const sources = torchEntries(model, where).map((entry) => {
    const shape = entry.value.shape;
    const wanted = entry.transpose ? [shape[1], shape[0]] : shape;
    // PyTorch stores num_batches_tracked as int64.
    const integers = entry.name.endsWith(".num_batches_tracked");
    return {
      entry,
      data: integers ? reader.takeNumbers(entry.name, wanted) : reader.take(entry.name, wanted),
    };
  });
  reader.checkAllUsed();
  const warnings: string[] = [];
  for (const { entry, data } of sources) {
    const allow = options.allowNonFinite === true;
    reader.checkFinite(entry.name, data as ArrayLike<number>, entry.value.dtype, allow, warnings);
  }
  if (warnings.length > 0) {
    console.warn(`${where}: loaded tensors that are not finite (allowNonFinite): ${warnings[0]}`);
  }
  for (const { entry, data } of sources) {
    const value = entry.value;
    if (entry.transpose) transpose(data, value.data, value.shape[1], value.shape[0]);
    else value.data.set(data);
  }
}
