import { describe, describeKind } from "../core/_describe.ts";
import { expectTensor } from "../core/_checks.ts";
import type { JsonObject } from "../core/json.ts";
import type { BackwardOptions, ForwardOptions, Layer, TorchName } from "../core/layer.ts";
import { checkAllocation } from "../core/_allocation.ts";
import { Param } from "../core/param.ts";
import { type RandomOptions, resolveRandom } from "../core/random.ts";
import { Scratch } from "../core/_scratch.ts";
import { type DType, formatShape, type NestedArray, Tensor } from "../core/tensor.ts";
import { fillExplicit } from "./_weights.ts";
import { flatIndex, type GpuContext, type GpuLayer, type GpuTensor, gridFor } from "../core/gpu.ts";
import { gpuSumColumns, kernel } from "../backends/webgpu_ops.ts";

/** Options of {@linkcode PositionalEmbedding}. */
export interface PositionalEmbeddingOptions extends RandomOptions {
  /** Initial table `[maxLength, dim]`: nested arrays or a flat row-major array. */
  weights?: NestedArray;
  /** Element type of the table; `"float32"` when omitted. */
  dtype?: DType;
}

function checkCount(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(
      `new PositionalEmbedding: ${name} must be a positive integer, got ${describe(value)}`,
    );
  }
}

// The GPU side: outputs[b, t, :] = inputs[b, t, :] + weights[t, :], one invocation per
// element (a sample's T·dim elements line up with the table's first T rows).
const FORWARD = /* wgsl */ `
struct P { count: u32, size: u32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${flatIndex()}
  if (i >= p.count) { return; }
  out[i] = x[i] + weights[i % p.size];
}`;

/**
 * Learned absolute positions, as GPT-2's `wpe`: adds row t of a trained table to every
 * sample's vector at position t, `outputs[b, t, :] = inputs[b, t, :] + weights[t, :]`.
 * It usually follows an {@linkcode Embedding} of the tokens.
 *
 * The table is drawn from N(0, 1), as a PyTorch model that keeps its positions in an
 * `nn.Embedding(maxLength, dim)` starts, so that tokens and positions begin at the same
 * scale beside an `Embedding` drawn likewise (nanoGPT and Hugging Face's GPT-2 draw both
 * from N(0, 0.02²): pass `weights` for that). In PyTorch the layer is
 * `x + self.weight[:T]` with `weight = nn.Parameter(torch.empty(maxLength, dim))`, the same
 * layout.
 *
 * Shapes: inputs `[batch, T, dim]` with T ≤ maxLength → outputs `[batch, T, dim]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PositionalEmbedding, Tensor } from "@chainrule/nn";
 *
 * const positions = new PositionalEmbedding(4, 2, { weights: [[1, 1], [2, 2], [3, 3], [4, 4]] });
 * const out = positions.forward(Tensor.from([[[0, 0], [10, 10]], [[5, 5], [0, 1]]]));
 * assert.deepEqual(out.toArray(), [[[1, 1], [12, 12]], [[6, 6], [2, 3]]]);
 * positions.backward(Tensor.from([[[1, 0], [0, 1]], [[1, 0], [0, 1]]]));
 * assert.deepEqual(positions.weights.grad.toArray(), [[2, 0], [0, 2], [0, 0], [0, 0]]);
 * ```
 */
export class PositionalEmbedding implements Layer, GpuLayer {
  /** Registry name. */
  readonly kind = "PositionalEmbedding";
  /** The longest sequence the table covers: inputs have T ≤ maxLength. */
  readonly maxLength: number;
  /** Features per position. */
  readonly dim: number;
  /** The table `[maxLength, dim]` (PyTorch's `weight`, same layout). */
  readonly weights: Param;
  #shape?: readonly number[]; // [batch, T, dim] of the last forward, checked by backward
  #training = false; // whether the cached forward was a training one
  #outputs = new Scratch(); // [batch, T, dim], reused by training forwards
  #gpuShape?: readonly number[]; // [batch, T, dim] of the last gpuForward

  /**
   * Creates the table, drawn from N(0, 1) unless `weights` are given.
   *
   * @throws {RangeError} when `maxLength` or `dim` is not a positive integer.
   * @throws {TypeError} for an unknown dtype or `weights` of another shape.
   */
  constructor(maxLength: number, dim: number, options: PositionalEmbeddingOptions = {}) {
    const where = "new PositionalEmbedding";
    checkCount(maxLength, "maxLength");
    checkCount(dim, "dim");
    this.maxLength = maxLength;
    this.dim = dim;
    const dtype = options.dtype ?? "float32";
    if (dtype !== "float32" && dtype !== "float64") {
      throw new TypeError(`${where}: dtype must be "float32" or "float64", got ${describe(dtype)}`);
    }
    checkAllocation(where, dtype, { weights: [maxLength, dim] });
    this.weights = new Param("weights", Tensor.zeros([maxLength, dim], { dtype }));
    if (options.weights !== undefined) {
      fillExplicit(this.weights.value, options.weights, "weights", where);
    } else {
      const random = resolveRandom(options);
      const w = this.weights.value.data;
      for (let i = 0; i < w.length; i++) w[i] = random.randn();
    }
  }

  /** Rebuilds a layer from {@linkcode PositionalEmbedding.config} (the table is drawn anew). */
  static fromConfig(config: JsonObject): PositionalEmbedding {
    const { maxLength, dim, ...options } = config as unknown as
      & { maxLength: number; dim: number }
      & PositionalEmbeddingOptions;
    return new PositionalEmbedding(maxLength, dim, options);
  }

  /** Element type of the table. */
  get dtype(): DType {
    return this.weights.dtype;
  }

  /**
   * `inputs` [batch, T, dim] → outputs [batch, T, dim]. A training forward reuses its
   * output buffer.
   *
   * @throws {TypeError} for inputs that are not `[batch, T, dim]` of the layer's dtype.
   * @throws {RangeError} when T exceeds `maxLength`.
   */
  forward(inputs: Tensor, options?: ForwardOptions): Tensor {
    const where = "PositionalEmbedding.forward";
    expectTensor(inputs, where);
    const shape = inputs.shape;
    if (inputs.rank !== 3 || shape[2] !== this.dim) {
      throw new TypeError(
        `${where}: inputs must be [batch, T, ${this.dim}], got shape ${formatShape(shape)}`,
      );
    }
    const [batch, length, dim] = shape;
    if (length > this.maxLength) {
      throw new RangeError(
        `${where}: sequence length T = ${length} exceeds maxLength = ${this.maxLength} ` +
          `(inputs shape ${formatShape(shape)})`,
      );
    }
    if (inputs.dtype !== this.dtype) {
      throw new TypeError(
        `${where}: inputs are ${inputs.dtype}, the layer is ${this.dtype} (convert with tensor.clone({ dtype: "${this.dtype}" }))`,
      );
    }
    this.#shape = shape;
    this.#training = options?.training === true;
    const outputs = this.#training // [batch, T, dim]
      ? this.#outputs.get(this.dtype, shape)
      : Tensor.zeros(shape, { dtype: this.dtype });
    const x = inputs.data, w = this.weights.value.data, out = outputs.data;
    const size = length * dim; // one sample; the table's first T rows line up with it
    for (let b = 0; b < batch; b++) {
      const offset = b * size;
      for (let i = 0; i < size; i++) out[offset + i] = x[offset + i] + w[i];
    }
    return outputs;
  }

  // dinputs = dvalues   dweights[t] += Σ_batch dvalues[b, t]
  /**
   * `dvalues` [batch, T, dim] → dinputs [batch, T, dim]: `dvalues` itself, not a copy.
   *
   * @throws {Error} before any forward; {TypeError} when `dvalues` is not shaped like the
   * last outputs.
   */
  backward(dvalues: Tensor, _options?: BackwardOptions): Tensor {
    const shape = this.#shape;
    if (!shape) throw new Error("PositionalEmbedding.backward: call forward first");
    const same = dvalues instanceof Tensor && dvalues.dtype === this.dtype &&
      dvalues.rank === 3 && dvalues.shape.every((d, i) => d === shape[i]);
    if (!same) {
      const got = dvalues instanceof Tensor
        ? `${dvalues.dtype} ${formatShape(dvalues.shape)}`
        : describeKind(dvalues);
      throw new TypeError(
        `PositionalEmbedding.backward: dvalues is ${got}, expected ${this.dtype} ${
          formatShape(shape)
        } like the last forward's outputs`,
      );
    }
    const [batch, length, dim] = shape;
    const size = length * dim;
    const dv = dvalues.data, dw = this.weights.grad.data;
    for (let i = 0; i < size; i++) {
      let sum = 0;
      for (let b = 0; b < batch; b++) sum += dv[b * size + i];
      dw[i] += sum;
    }
    return dvalues;
  }

  /**
   * {@linkcode PositionalEmbedding.forward} on the device: `inputs` [batch, T, dim] →
   * outputs [batch, T, dim].
   */
  gpuForward(ctx: GpuContext, inputs: GpuTensor): GpuTensor {
    const where = "PositionalEmbedding.gpuForward";
    const shape = inputs.shape;
    if (shape.length !== 3 || shape[2] !== this.dim) {
      throw new TypeError(
        `${where}: inputs must be [batch, T, ${this.dim}], got shape ${formatShape(shape)}`,
      );
    }
    if (shape[1] > this.maxLength) {
      throw new RangeError(
        `${where}: sequence length T = ${shape[1]} exceeds maxLength = ${this.maxLength} ` +
          `(inputs shape ${formatShape(shape)})`,
      );
    }
    const outputs = ctx.buffer(this, "outputs", shape); // [batch, T, dim]
    const weights = ctx.param(this.weights).value;
    const size = shape[1] * shape[2]; // one sample
    ctx.run(
      this,
      "forward",
      kernel("PositionalEmbedding.forward", FORWARD),
      [inputs, weights, outputs],
      [inputs.size, size],
      gridFor(inputs.size),
    );
    this.#gpuShape = shape;
    return outputs;
  }

  // dinputs = dvalues   dweights[t] += Σ_batch dvalues[b, t]
  /**
   * {@linkcode PositionalEmbedding.backward} on the device: `dvalues` [batch, T, dim] →
   * dinputs, `dvalues` itself.
   */
  gpuBackward(ctx: GpuContext, dvalues: GpuTensor): GpuTensor {
    const shape = this.#gpuShape;
    if (!shape) throw new Error("PositionalEmbedding.gpuBackward: call gpuForward first");
    const [batch, length, dim] = shape;
    if (dvalues.size !== batch * length * dim) {
      throw new TypeError(
        `PositionalEmbedding.gpuBackward: dvalues has shape ${
          formatShape(dvalues.shape)
        }, expected ${formatShape(shape)} like the last gpuForward's outputs`,
      );
    }
    // The table's first T rows are the columns of dvalues read as [batch, T·dim].
    const dweights = ctx.param(this.weights).grad;
    gpuSumColumns(ctx, this, "dweights", dvalues, dweights, batch, length * dim, true);
    return dvalues;
  }

  /** `[weights]` */
  params(): Param[] {
    return [this.weights];
  }

  /** PyTorch's name: `weight`, `[maxLength, dim]` as here. */
  torchNames(): Record<string, TorchName> {
    return { weights: { torch: "weight" } };
  }

  /** `{ maxLength, dim, dtype }` */
  config(): JsonObject {
    return { maxLength: this.maxLength, dim: this.dim, dtype: this.dtype };
  }

  /** `PositionalEmbedding(maxLength=1024, dim=768)` */
  toString(): string {
    return `PositionalEmbedding(maxLength=${this.maxLength}, dim=${this.dim})`;
  }
}
