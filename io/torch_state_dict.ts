// PyTorch's names for a model's parameters, so weights move between chainrule and
// `torch.nn.Sequential` through a safetensors file.
import type { Chain } from "../core/chain.ts";
import { type FloatArray, Tensor } from "../core/tensor.ts";
import { type ParamSite, paramSites } from "./model_io.ts";
import { TensorReader } from "./_tensor_reader.ts";
import type { TensorSource } from "./safetensors.ts";

// The book names a layer's parameters "weights" `[in, out]` and "biases"; PyTorch's Linear
// names them "weight" `[out, in]` (the transpose) and "bias".
function torchName(site: ParamSite, where: string): { name: string; transpose: boolean } {
  const { param, path, layers } = site;
  const prefix = path.join(".");
  if (param.name === "weights" && param.value.rank === 2) {
    return { name: `${prefix}.weight`, transpose: true };
  }
  if (param.name === "biases") return { name: `${prefix}.bias`, transpose: false };
  throw new TypeError(
    `${where}: param "${param.name}" (shape [${param.value.shape}]) of layer ${prefix} ` +
      `(${layers.at(-1)!.kind}) has no PyTorch name; only 2-D "weights" (→ "weight", ` +
      `transposed) and "biases" (→ "bias") are mapped`,
  );
}

// [rows, cols] row-major → [cols, rows] row-major
function transpose(data: ArrayLike<number>, out: FloatArray, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const rowOffset = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[rowOffset + c];
  }
}

/**
 * The model's parameters under the names `torch.nn.Sequential.state_dict()` uses for the same
 * architecture: `<index>.weight` (transposed to `[out, in]`, as `nn.Linear` keeps it) and
 * `<index>.bias`. PyTorch counts every module, activations included, exactly as chainrule
 * counts layers, so `Dense(2,64) → ReLU → Dense(64,3)` gives `0.weight`, `0.bias`,
 * `2.weight`, `2.bias`, which `nn.Sequential(nn.Linear(2,64), nn.ReLU(), nn.Linear(64,3))`
 * loads with `load_state_dict(safetensors.torch.load_file(path))`. A nested Sequential at
 * index 1 gives `1.0.weight`, as in PyTorch. The tensors are copies.
 *
 * @throws {TypeError} for a parameter other than 2-D `weights` or `biases`.
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
  const where = "toTorchStateDict";
  const state = new Map<string, Tensor>();
  for (const site of paramSites(model, where)) {
    const { name, transpose: flip } = torchName(site, where);
    const value = site.param.value;
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
 * transposing each `weight` back to `[in, out]`. Strict, like PyTorch's default: every name
 * must be there with the right shape, and no other. Any float dtype is accepted and converted
 * to the model's.
 *
 * @throws {SafetensorsError} for a missing, extra, misshapen or non-float tensor.
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
): void {
  const where = "loadTorchStateDict";
  if (!(stateDict instanceof Map)) {
    throw new TypeError(`${where}: stateDict must be a Map of name → tensor, got ${stateDict}`);
  }
  const reader = new TensorReader(stateDict, {}, where);
  const sites = paramSites(model, where);
  // Everything is checked before the first parameter changes.
  const sources = sites.map((site) => {
    const { name, transpose: flip } = torchName(site, where);
    const shape = site.param.value.shape;
    return { site, flip, data: reader.take(name, flip ? [shape[1], shape[0]] : shape) };
  });
  reader.checkAllUsed();
  for (const { site, flip, data } of sources) {
    const value = site.param.value;
    if (flip) transpose(data, value.data, value.shape[1], value.shape[0]);
    else value.data.set(data);
  }
}
