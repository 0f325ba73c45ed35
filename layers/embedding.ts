import { describe, describeKind } from "../core/_describe.ts";
import type { JsonObject } from "../core/json.ts";
import type { BackwardOptions, ForwardOptions, Layer, TorchName } from "../core/layer.ts";
import { checkAllocation } from "../core/_allocation.ts";
import { Param } from "../core/param.ts";
import { type RandomOptions, resolveRandom } from "../core/random.ts";
import { Scratch } from "../core/_scratch.ts";
import { groupSumsOf, type RowGroups, setRowGroups } from "../core/row_groups.ts";
import { type DType, formatShape, type NestedArray, Tensor, toTensor } from "../core/tensor.ts";
import { fillExplicit } from "./_weights.ts";
import { flatIndex, type GpuContext, type GpuLayer, type GpuTensor, gridFor } from "../core/gpu.ts";
import { kernel } from "../backends/webgpu_ops.ts";

/** Options of {@linkcode Embedding}. */
export interface EmbeddingOptions extends RandomOptions {
  /**
   * A token id whose row stays zero and gets no gradient (padding), as PyTorch's
   * `padding_idx`. A negative value counts from the end (−1 is the last row), as in PyTorch;
   * it is stored as the row it names.
   */
  paddingIdx?: number;
  /**
   * Initial table `[numEmbeddings, dim]`: nested arrays or a flat row-major array. Taken as
   * given, the `paddingIdx` row included (as PyTorch's `Embedding.from_pretrained`).
   */
  weights?: NestedArray;
  /** Element type of the table and the outputs; `"float32"` when omitted. */
  dtype?: DType;
}

// RowGroups whose count is rewritten by each forward (the arrays are reused).
type IdGroups = RowGroups & { count: number };

function checkCount(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(
      `new Embedding: ${name} must be a positive integer, got ${describe(value)}`,
    );
  }
}

// The position of flat index `i` in `shape`, as error messages show it: `[1, 3]`.
function positionOf(i: number, shape: readonly number[]): string {
  const at = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    at[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return formatShape(at);
}

// The GPU side. Ids arrive as float32; `idOf` reads one as the row it picks, or −1 for a
// value that is not an integer in [0, rows) (NaN and ±Inf included).
const ID_OF = /* wgsl */ `
fn idOf(value: f32) -> i32 {
  let finite = (bitcast<u32>(value) & 0x7f800000u) != 0x7f800000u;
  if (!finite || value != floor(value) || value < 0.0 || value >= f32(p.rows)) { return -1; }
  return i32(value);
}`;

// outputs[i, :] = weights[ids[i], :], one invocation per output element; a bad id gives a
// NaN row, so that the step's loss is not finite (the CPU forward names the id).
const FORWARD = /* wgsl */ `
struct P { count: u32, dim: u32, rows: u32, nan: u32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> ids: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
${ID_OF}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${flatIndex()}
  if (i >= p.count * p.dim) { return; }
  let id = idOf(ids[i / p.dim]);
  if (id < 0) {
    out[i] = bitcast<f32>(p.nan); // not a constant: a constant NaN is a WGSL error
    return;
  }
  out[i] = weights[u32(id) * p.dim + i % p.dim];
}`;

// order[slot] = position, sorted by (id, position): slot = #{q: id_q < id_p} +
// #{q < p: id_q = id_p}, counted over tiles of 256 ids in workgroup memory. Bad ids sort
// first as −1. O(positions²) comparisons, no atomics: the same order every time.
const SORT = /* wgsl */ `
struct P { count: u32, rows: u32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> ids: array<f32>;
@group(0) @binding(2) var<storage, read_write> order: array<u32>;
var<workgroup> tile: array<i32, 256>;
${ID_OF}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u,
    @builtin(local_invocation_id) lids: vec3u) {
  ${flatIndex()}
  let lid = lids.x;
  let valid = i < p.count;
  var mine = -1;
  if (valid) { mine = idOf(ids[i]); }
  var slot = 0u;
  for (var start = 0u; start < p.count; start += 256u) {
    if (start + lid < p.count) { tile[lid] = idOf(ids[start + lid]); }
    workgroupBarrier();
    let n = min(256u, p.count - start);
    for (var j = 0u; j < n; j++) {
      let other = tile[j];
      if (other < mine || (other == mine && start + j < i)) { slot++; }
    }
    workgroupBarrier();
  }
  if (valid) { order[slot] = i; }
}`;

// dweights[id, f] += Σ dvalues[q, f] over the positions q holding id, in position order:
// one invocation per (sorted slot, feature), of which the first slot of each id sums its
// run; bad ids and paddingIdx get nothing.
const SCATTER_ADD = /* wgsl */ `
struct P { count: u32, dim: u32, rows: u32, padding: i32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> ids: array<f32>;
@group(0) @binding(2) var<storage, read> order: array<u32>;
@group(0) @binding(3) var<storage, read> dv: array<f32>;
@group(0) @binding(4) var<storage, read_write> dweights: array<f32>;
${ID_OF}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${flatIndex()}
  if (i >= p.count * p.dim) { return; }
  let slot = i / p.dim;
  let f = i % p.dim;
  let id = idOf(ids[order[slot]]);
  if (id < 0 || id == p.padding) { return; }
  if (slot > 0u && idOf(ids[order[slot - 1u]]) == id) { return; }
  var sum = 0.0;
  for (var s = slot; s < p.count; s++) {
    let q = order[s];
    if (idOf(ids[q]) != id) { break; }
    sum += dv[q * p.dim + f];
  }
  dweights[u32(id) * p.dim + f] += sum;
}`;

/**
 * A lookup table of learned vectors, one per token id: `outputs[…, :] = weights[ids[…], :]`,
 * as PyTorch's `nn.Embedding` (the first layer of a language model).
 *
 * The ids are integers held in a float tensor of either dtype (what `fit` and `predict`
 * make of nested arrays), or nested arrays of integers. The table is drawn from N(0, 1), as
 * `nn.Embedding` draws it, with the `paddingIdx` row zeroed. Backward adds each position's
 * `dvalues` row into the gradient of the row its id picked (a scatter-add; the `paddingIdx`
 * row gets none) and returns zeros for the ids, which have no gradient.
 *
 * Shapes: ids `[batch, T]` (any rank ≥ 1) → outputs `[batch, T, dim]` (`[...ids.shape, dim]`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Embedding, Tensor } from "@chainrule/nn";
 *
 * const embed = new Embedding(3, 2, { weights: [[0, 0], [1, 2], [3, 4]], paddingIdx: 0 });
 * const out = embed.forward(Tensor.from([[2, 1, 0]]));
 * assert.deepEqual(out.shape, [1, 3, 2]);
 * assert.deepEqual(out.toArray(), [[[3, 4], [1, 2], [0, 0]]]);
 * embed.backward(Tensor.from([[[1, 1], [2, 2], [5, 5]]]));
 * assert.deepEqual(embed.weights.grad.toArray(), [[0, 0], [2, 2], [1, 1]]); // row 0 pads
 * ```
 */
export class Embedding implements Layer, GpuLayer {
  /** Registry name. */
  readonly kind = "Embedding";
  /** How many ids the table holds: ids are in [0, numEmbeddings). */
  readonly numEmbeddings: number;
  /** Length of each vector. */
  readonly dim: number;
  /** The padding id (in [0, numEmbeddings)), or undefined when there is none. */
  readonly paddingIdx?: number;
  /** The table `[numEmbeddings, dim]` (PyTorch's `weight`, same layout). */
  readonly weights: Param;
  #ids?: Int32Array; // [...ids shape], the last forward's ids, read by backward
  #idsShape?: readonly number[]; // the shape of the ids (what backward returns)
  #idsDType: DType = "float32"; // the dtype of the ids tensor (nested arrays: the layer's)
  #training = false; // whether the cached forward was a training one
  #outputs = new Scratch(); // [...ids shape, dim], reused by training forwards
  #dinputs = new Scratch(); // [...ids shape], zeros returned by backward after a training forward
  #gpuIds?: GpuTensor; // [...ids shape] float32, cached by gpuForward for gpuBackward
  #groups?: IdGroups; // the last forward's positions grouped by id, tagged on its outputs
  #slots?: Int32Array; // [numEmbeddings]: an id's group while grouping, else −1

  /**
   * Creates the table, drawn from N(0, 1) (zero at `paddingIdx`) unless `weights` are given.
   *
   * @throws {RangeError} when `numEmbeddings` or `dim` is not a positive integer, or
   * `paddingIdx` is not an integer in [−numEmbeddings, numEmbeddings).
   * @throws {TypeError} for an unknown dtype or `weights` of another shape.
   */
  constructor(numEmbeddings: number, dim: number, options: EmbeddingOptions = {}) {
    const where = "new Embedding";
    checkCount(numEmbeddings, "numEmbeddings");
    checkCount(dim, "dim");
    this.numEmbeddings = numEmbeddings;
    this.dim = dim;
    const dtype = options.dtype ?? "float32";
    if (dtype !== "float32" && dtype !== "float64") {
      throw new TypeError(`${where}: dtype must be "float32" or "float64", got ${describe(dtype)}`);
    }
    const padding = options.paddingIdx;
    if (padding !== undefined) {
      if (!Number.isInteger(padding) || padding < -numEmbeddings || padding >= numEmbeddings) {
        throw new RangeError(
          `${where}: paddingIdx must be an integer in [${-numEmbeddings}, ${numEmbeddings}) ` +
            `for ${numEmbeddings} embeddings, got ${describe(padding)}`,
        );
      }
      this.paddingIdx = padding < 0 ? padding + numEmbeddings : padding;
    }
    checkAllocation(where, dtype, { weights: [numEmbeddings, dim] });
    this.weights = new Param("weights", Tensor.zeros([numEmbeddings, dim], { dtype }));
    const w = this.weights.value.data;
    if (options.weights !== undefined) {
      fillExplicit(this.weights.value, options.weights, "weights", where);
    } else {
      const random = resolveRandom(options);
      for (let i = 0; i < w.length; i++) w[i] = random.randn();
      if (this.paddingIdx !== undefined) {
        w.fill(0, this.paddingIdx * dim, (this.paddingIdx + 1) * dim);
      }
    }
  }

  /** Rebuilds a layer from {@linkcode Embedding.config} (the table is drawn anew). */
  static fromConfig(config: JsonObject): Embedding {
    const { numEmbeddings, dim, ...options } = config as unknown as
      & { numEmbeddings: number; dim: number }
      & EmbeddingOptions;
    return new Embedding(numEmbeddings, dim, options);
  }

  /** Element type of the table and the outputs. */
  get dtype(): DType {
    return this.weights.dtype;
  }

  /**
   * `ids` [...] (integers, in a tensor of either dtype or nested arrays) → outputs
   * [..., dim] of the layer's dtype. A training forward reuses its output buffer.
   *
   * @throws {TypeError} for ids that are not a tensor or nested arrays, or a scalar.
   * @throws {RangeError} for an id that is not an integer in [0, numEmbeddings), naming it
   * and its position.
   */
  forward(ids: Tensor | NestedArray, options?: ForwardOptions): Tensor {
    const where = "Embedding.forward";
    // Nested arrays become float64, which holds every id exactly.
    const tensor = ids instanceof Tensor ? ids : toTensor(ids, "float64", where, "ids");
    if (tensor.rank < 1) {
      throw new TypeError(
        `${where}: ids must have at least 1 dimension ([batch, T] usually), got shape ${
          formatShape(tensor.shape)
        }`,
      );
    }
    this.#checkIds(tensor, where);
    const source = tensor.data, count = source.length;
    const cached = this.#ids?.length === count ? this.#ids : new Int32Array(count);
    for (let i = 0; i < count; i++) cached[i] = source[i];
    this.#ids = cached;
    this.#idsShape = tensor.shape;
    this.#idsDType = tensor.dtype;
    this.#training = options?.training === true;
    const dim = this.dim;
    const shape = [...tensor.shape, dim];
    const outputs = this.#training // [...ids shape, dim]
      ? this.#outputs.get(this.dtype, shape)
      : Tensor.zeros(shape, { dtype: this.dtype });
    const w = this.weights.value.data, out = outputs.data;
    for (let i = 0; i < count; i++) {
      const from = cached[i] * dim, to = i * dim;
      for (let j = 0; j < dim; j++) out[to + j] = w[from + j];
    }
    setRowGroups(outputs, this.#groupIds(cached));
    return outputs;
  }

  // The positions grouped by id, numbered by first appearance: the next layer may multiply
  // one row per id (see RowGroups) and hand back group sums, which backward takes.
  #groupIds(ids: Int32Array): IdGroups {
    const rows = ids.length;
    const groups = this.#groups?.rows === rows ? this.#groups : {
      rows,
      count: 0,
      group: new Int32Array(rows),
      first: new Int32Array(Math.min(rows, this.numEmbeddings)),
    };
    const slots = this.#slots ??= new Int32Array(this.numEmbeddings).fill(-1);
    const { group, first } = groups;
    let count = 0;
    for (let r = 0; r < rows; r++) {
      const id = ids[r];
      let g = slots[id];
      if (g < 0) {
        g = slots[id] = count++;
        first[g] = r;
      }
      group[r] = g;
    }
    for (let g = 0; g < count; g++) slots[ids[first[g]]] = -1;
    groups.count = count;
    return this.#groups = groups;
  }

  // Every id an integer in [0, numEmbeddings), or a RangeError naming the first that is not.
  #checkIds(tensor: Tensor, where: string): void {
    const source = tensor.data, count = source.length, rows = this.numEmbeddings;
    for (let i = 0; i < count; i++) {
      const id = source[i];
      if (!(Number.isInteger(id) && id >= 0 && id < rows)) {
        const what = Number.isInteger(id)
          ? `is out of range [0, ${rows})`
          : Number.isNaN(id)
          ? "is not a number"
          : "is not an integer";
        throw new RangeError(
          `${where}: id ${id} at position ${positionOf(i, tensor.shape)} ${what} ` +
            `(ids shape ${formatShape(tensor.shape)}, ${rows} embeddings)`,
        );
      }
    }
  }

  /**
   * Checks on the CPU, before a GPU fit or predict starts, every id of `ids` as `forward`
   * does (the device cannot throw): an integer in [0, numEmbeddings).
   *
   * @throws {RangeError} naming `where`, the first bad id and its position.
   */
  gpuCheckInputs(ids: Tensor, where: string): void {
    this.#checkIds(ids, `${where}: Embedding`);
  }

  // dweights[ids[p]] += dvalues[p] for every position p whose id is not paddingIdx (group
  // sums: dweights[id_g] += dvalues[g]); dids = 0 (ids are not differentiable)
  /**
   * `dvalues` [..., dim] → zeros shaped like the ids (not filled when
   * `options.inputGradient` is false). `dvalues` may also be the next layer's sums over the
   * groups of equal rows this forward tagged its outputs with (`[groups, dim]`, tagged by
   * `markGroupSums`, see `RowGroups`): row g then goes to the g-th id's row at once.
   *
   * @throws {Error} before any forward; {TypeError} when `dvalues` is not shaped like the
   * last outputs.
   */
  backward(dvalues: Tensor, options?: BackwardOptions): Tensor {
    const ids = this.#ids, idsShape = this.#idsShape;
    if (!ids || !idsShape) throw new Error("Embedding.backward: call forward first");
    const dim = this.dim;
    // Group sums (see RowGroups): row g is already Σ dvalues over the positions of id g.
    const groups = dvalues instanceof Tensor && this.#groups !== undefined &&
        groupSumsOf(dvalues) === this.#groups
      ? this.#groups
      : undefined;
    const shape = groups ? [groups.count, dim] : [...idsShape, dim];
    const same = dvalues instanceof Tensor && dvalues.dtype === this.dtype &&
      dvalues.rank === shape.length && dvalues.shape.every((d, i) => d === shape[i]);
    if (!same) {
      const got = dvalues instanceof Tensor
        ? `${dvalues.dtype} ${formatShape(dvalues.shape)}`
        : describeKind(dvalues);
      throw new TypeError(
        `Embedding.backward: dvalues is ${got}, expected ${this.dtype} ${
          formatShape(shape)
        } like the last forward's outputs`,
      );
    }
    const dv = dvalues.data, dw = this.weights.grad.data, padding = this.paddingIdx ?? -1;
    const rows = groups ? groups.count : ids.length;
    for (let p = 0; p < rows; p++) {
      const id = groups ? ids[groups.first[p]] : ids[p];
      if (id === padding) continue;
      const to = id * dim, from = p * dim;
      for (let j = 0; j < dim; j++) dw[to + j] += dv[from + j];
    }
    if (!this.#training) return Tensor.zeros(idsShape, { dtype: this.#idsDType });
    const dids = this.#dinputs.get(this.#idsDType, idsShape); // [...ids shape]
    if (options?.inputGradient !== false) dids.data.fill(0);
    return dids;
  }

  /**
   * {@linkcode Embedding.forward} on the device: `ids` [...] (float32 integers, as the
   * training loop uploads inputs) → outputs [..., dim]. An id that is not an integer in
   * [0, numEmbeddings) gives a NaN row (the step's loss is then not finite), where the CPU
   * forward throws.
   */
  gpuForward(ctx: GpuContext, ids: GpuTensor): GpuTensor {
    if (ids.shape.length < 1 || ids.dtype !== "float32") {
      throw new TypeError(
        `Embedding.gpuForward: ids must be float32 with at least 1 dimension, got ${ids.dtype} ${
          formatShape(ids.shape)
        }`,
      );
    }
    const dim = this.dim, count = ids.size;
    const outputs = ctx.buffer(this, "outputs", [...ids.shape, dim]); // [..., dim]
    const weights = ctx.param(this.weights).value;
    ctx.run(
      this,
      "forward",
      kernel("Embedding.forward", FORWARD),
      [ids, weights, outputs],
      [count, dim, this.numEmbeddings, 0x7fc00000],
      gridFor(count * dim),
    );
    this.#gpuIds = ids;
    return outputs;
  }

  // dweights[ids[p]] += dvalues[p] for every position p whose id is not paddingIdx (group
  // sums: dweights[id_g] += dvalues[g]); dids = 0 (ids are not differentiable)
  /**
   * {@linkcode Embedding.backward} on the device: `dvalues` [..., dim] → zeros shaped like
   * the ids. The scatter-add sorts the positions by id (no atomics), so every run adds the
   * same float32 sums in the same order.
   */
  gpuBackward(ctx: GpuContext, dvalues: GpuTensor): GpuTensor {
    const ids = this.#gpuIds;
    if (!ids) throw new Error("Embedding.gpuBackward: call gpuForward first");
    const dim = this.dim, count = ids.size;
    if (dvalues.size !== count * dim) {
      throw new TypeError(
        `Embedding.gpuBackward: dvalues has shape ${formatShape(dvalues.shape)}, expected ${
          formatShape([...ids.shape, dim])
        } like the last gpuForward's outputs`,
      );
    }
    const order = ctx.buffer(this, "order", [count], "uint32"); // [positions], sorted by id
    const rows = this.numEmbeddings;
    ctx.run(this, "sort", kernel("Embedding.backward (sort)", SORT), [ids, order], [
      count,
      rows,
    ], gridFor(count));
    const dweights = ctx.param(this.weights).grad;
    ctx.run(
      this,
      "scatter-add",
      kernel("Embedding.backward", SCATTER_ADD),
      [ids, order, dvalues, dweights],
      [count, dim, rows, this.paddingIdx ?? -1],
      gridFor(count * dim),
    );
    return ctx.buffer(this, "dinputs", ids.shape); // [...ids shape], zeros: never written
  }

  /** `[weights]` */
  params(): Param[] {
    return [this.weights];
  }

  /** PyTorch's `nn.Embedding` name: `weight`, `[numEmbeddings, dim]` as here. */
  torchNames(): Record<string, TorchName> {
    return { weights: { torch: "weight" } };
  }

  /** `{ numEmbeddings, dim, dtype }`, and `paddingIdx` when set. */
  config(): JsonObject {
    const config: JsonObject = {
      numEmbeddings: this.numEmbeddings,
      dim: this.dim,
      dtype: this.dtype,
    };
    if (this.paddingIdx !== undefined) config.paddingIdx = this.paddingIdx;
    return config;
  }

  /** `Embedding(numEmbeddings=50257, dim=768)`, with `paddingIdx` when set. */
  toString(): string {
    const padding = this.paddingIdx === undefined ? "" : `, paddingIdx=${this.paddingIdx}`;
    return `Embedding(numEmbeddings=${this.numEmbeddings}, dim=${this.dim}${padding})`;
  }
}
