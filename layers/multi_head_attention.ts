import { describe, describeKind } from "../core/_describe.ts";
import { getBackend } from "../backends/selection.ts";
import { expectTensor } from "../core/_checks.ts";
import type { AttentionShape, Backend } from "../core/backend.ts";
import type { JsonObject } from "../core/json.ts";
import type { BackwardOptions, ForwardOptions, Layer, TorchName } from "../core/layer.ts";
import { checkAllocation } from "../core/_allocation.ts";
import { Param } from "../core/param.ts";
import { type RandomOptions, type RandomState, resolveRandom } from "../core/random.ts";
import { Scratch } from "../core/_scratch.ts";
import {
  type DType,
  type FloatArray,
  formatShape,
  type NestedArray,
  Tensor,
} from "../core/tensor.ts";
import {
  blocks,
  dropWeights,
  type GpuDropoutMask,
  gpuDropWeights,
  gpuMergeHeads,
  gpuSoftmaxRows,
  gpuSoftmaxRowsBackward,
  gpuSplitHeads,
  mergeHeads,
  softmaxRows,
  softmaxRowsBackward,
  splitHeads,
} from "./_attention.ts";
import { fillExplicit } from "./_weights.ts";
import type {
  GpuBackwardOptions,
  GpuContext,
  GpuForwardOptions,
  GpuLayer,
  GpuTensor,
} from "../core/gpu.ts";
import { gpuMatmul, gpuSumColumns } from "../backends/webgpu_ops.ts";

// Dimension letters: B batch, T positions, D = dim, H heads, E = D / H per head.

/** Options of {@linkcode MultiHeadAttention}. */
export interface MultiHeadAttentionOptions extends RandomOptions {
  /** Position i attends only to positions j ≤ i (a decoder's mask); false when omitted. */
  causal?: boolean;
  /** Whether the projections add biases (PyTorch's `bias`); true when omitted. */
  bias?: boolean;
  /** Fraction of the attention weights dropped while training, in [0, 1); 0 when omitted. */
  dropout?: number;
  /** Element type of the parameters; `"float32"` when omitted. */
  dtype?: DType;
  /** Initial in-projection `[dim, 3·dim]` (columns q | k | v); drawn when omitted. */
  inProjWeights?: NestedArray;
  /** Initial in-projection biases `[3·dim]`; zeros when omitted. */
  inProjBiases?: NestedArray;
  /** Initial out-projection `[dim, dim]` (`[in, out]`); drawn when omitted. */
  outProjWeights?: NestedArray;
  /** Initial out-projection biases `[dim]`; zeros when omitted. */
  outProjBiases?: NestedArray;
}

const WHERE = "new MultiHeadAttention";

function checkCount(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`${WHERE}: ${name} must be a positive integer, got ${describe(value)}`);
  }
}

function checkFlag(value: unknown, name: string): boolean {
  if (typeof value !== "boolean") {
    throw new TypeError(`${WHERE}: ${name} must be true or false, got ${describe(value)}`);
  }
  return value;
}

// U(−limit, limit) in row-major order, as the initializers draw.
function uniform(out: FloatArray, limit: number, random: RandomState): void {
  for (let i = 0; i < out.length; i++) out[i] = (2 * random.random() - 1) * limit;
}

/**
 * Multi-head self-attention (Vaswani et al. 2017), the function of PyTorch's
 * `nn.MultiheadAttention(dim, heads, bias=bias, batch_first=True)` called as
 * `mha(x, x, x, attn_mask=mask, need_weights=False)[0]`:
 *
 * ```
 * q | k | v = inputs·inProjWeights + inProjBiases           each [B, T, D], split into H heads of E
 * head_h    = softmax(q_h·k_hᵀ / √E + mask)·v_h              [B, T, E]
 * outputs   = concat(head_1 … head_H)·outProjWeights + outProjBiases
 * ```
 *
 * With `causal`, position i attends only to positions j ≤ i (PyTorch's mask
 * `torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)`). With `dropout`, each
 * attention weight is dropped while training with that probability and the rest are scaled
 * by 1 / (1 − dropout), as PyTorch does; the mask is drawn from the layer's seeded
 * generator (`random`), one draw per weight in row-major order over [B, H, T, T] (for
 * j ≤ i only, when causal). At inference nothing is dropped.
 *
 * Params, in PyTorch's order: `inProjWeights` `[dim, 3·dim]` (kept `[in, out]` like
 * `Dense`: PyTorch's `in_proj_weight` is the transpose), `inProjBiases` `[3·dim]`,
 * `outProjWeights` `[dim, dim]` (`out_proj.weight` transposed), `outProjBiases` `[dim]`;
 * without `bias`, no biases. Initialized as PyTorch does: the in-projection Glorot-uniform
 * over its 3·dim × dim matrix, the out-projection U(−1/√dim, 1/√dim) (`nn.Linear`'s
 * default), biases zero.
 *
 * Shapes: inputs `[batch, T, dim]` → outputs `[batch, T, dim]`. The projections are one
 * product each over all batch·T rows and the per-head products run on the backend; a
 * training forward and the backward after it reuse their buffers (see `ForwardOptions`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MultiHeadAttention, Tensor } from "@chainrule/nn";
 *
 * const attention = new MultiHeadAttention(8, 2, { causal: true, seed: 1 });
 * const x = Tensor.randn([2, 5, 8], { seed: 2 }); // [batch, T, dim]
 * const y = attention.forward(x);
 * assert.deepEqual(y.shape, [2, 5, 8]);
 * // Causal: changing the last position leaves the earlier outputs as they were.
 * const changed = x.clone();
 * changed.set(9, 0, 4, 0);
 * assert.deepEqual(attention.forward(changed).data.subarray(0, 32), y.data.subarray(0, 32));
 * ```
 */
export class MultiHeadAttention implements Layer, GpuLayer {
  /** Registry name. */
  readonly kind = "MultiHeadAttention";
  /** Features per position (PyTorch's `embed_dim`). */
  readonly dim: number;
  /** Number of attention heads. */
  readonly heads: number;
  /** Features per head: dim / heads. */
  readonly headDim: number;
  /** Whether position i attends only to positions j ≤ i. */
  readonly causal: boolean;
  /** Whether the projections have biases. */
  readonly bias: boolean;
  /** Fraction of the attention weights dropped while training. */
  readonly dropout: number;
  /** The seed given, kept for `config()`. */
  readonly seed?: number;
  /** The generator the weights and the dropout masks are drawn from. */
  readonly random: RandomState;
  /** `[dim, 3·dim]`: columns q | k | v, each heads blocks of headDim. */
  readonly inProjWeights: Param;
  /** `[3·dim]`; undefined without bias. */
  readonly inProjBiases?: Param;
  /** `[dim, dim]` (`[in, out]`). */
  readonly outProjWeights: Param;
  /** `[dim]`; undefined without bias. */
  readonly outProjBiases?: Param;
  #inputs?: Tensor; // [B, T, D], cached by forward for backward
  #training = false; // whether the cached forward was a training one
  #qkv?: FloatArray; // [B·T, 3·D]: q | k | v, the in-projection's outputs
  #heads?: FloatArray; // [3, B, H, T, E]: q, k, v by head (undefined: the backend split them)
  #probs?: FloatArray; // [B, H, T, T]: softmax of the scaled scores, before dropout
  #mask?: FloatArray; // [B, H, T, T]: 0 or 1 / (1 − dropout); absent when nothing was dropped
  #dropped?: FloatArray; // [B, H, T, T]: probs·mask, what multiplied v
  #concat?: FloatArray; // [B·T, D]: the heads' outputs side by side
  // Training buffers, reused from step to step.
  #qkvBuffer = new Scratch(); // [B·T, 3·D]
  #headsBuffer = new Scratch(); // [3, B, H, T, E]
  #probsBuffer = new Scratch(); // [B, H, T, T]
  #maskBuffer = new Scratch(); // [B, H, T, T]
  #droppedBuffer = new Scratch(); // [B, H, T, T]
  #attendedBuffer = new Scratch(); // [B, H, T, E]
  #concatBuffer = new Scratch(); // [B·T, D]
  #outputs = new Scratch(); // [B, T, D]
  #dconcatBuffer = new Scratch(); // [B·T, D]
  #dattendedBuffer = new Scratch(); // [B, H, T, E]
  #dprobsBuffer = new Scratch(); // [T, T], one head at a time
  #dheadsBuffer = new Scratch(); // [3, B, H, T, E]
  #dqkvBuffer = new Scratch(); // [B·T, 3·D]
  #dinputs = new Scratch(); // [B, T, D]
  #gpuInputs?: GpuTensor; // [B, T, D], cached by gpuForward for gpuBackward
  #gpuMask?: GpuDropoutMask; // the last training gpuForward's dropout; absent without
  #gpuKey?: number; // 32 bits drawn once from `random`: the key of the GPU dropout masks

  /**
   * Creates the layer, drawing the projections unless they are given.
   *
   * @throws {RangeError} when dim or heads is not a positive integer, dim is not divisible
   * by heads, or dropout is not in [0, 1).
   * @throws {TypeError} for a bad dtype, causal or bias flag, or given weights of the wrong
   * shape (biases given without bias included).
   */
  constructor(dim: number, heads: number, options: MultiHeadAttentionOptions = {}) {
    checkCount(dim, "dim");
    checkCount(heads, "heads");
    if (dim % heads !== 0) {
      throw new RangeError(
        `${WHERE}: dim ${dim} must be divisible by heads ${heads} (each head takes dim / heads features)`,
      );
    }
    const dropout = options.dropout ?? 0;
    if (typeof dropout !== "number" || !(dropout >= 0 && dropout < 1)) {
      throw new RangeError(
        `${WHERE}: dropout must be a number in [0, 1), got ${describe(dropout)}`,
      );
    }
    const dtype = options.dtype ?? "float32";
    if (dtype !== "float32" && dtype !== "float64") {
      throw new TypeError(`${WHERE}: dtype must be "float32" or "float64", got ${describe(dtype)}`);
    }
    this.dim = dim;
    this.heads = heads;
    this.headDim = dim / heads;
    this.causal = checkFlag(options.causal ?? false, "causal");
    this.bias = checkFlag(options.bias ?? true, "bias");
    this.dropout = dropout;
    this.seed = options.seed;
    this.random = resolveRandom(options);
    const shapes: Record<string, number[]> = {
      inProjWeights: [dim, 3 * dim],
      outProjWeights: [dim, dim],
    };
    if (this.bias) Object.assign(shapes, { inProjBiases: [3 * dim], outProjBiases: [dim] });
    checkAllocation(WHERE, dtype, shapes);
    const zeros = (name: string, shape: number[]) =>
      new Param(name, Tensor.zeros(shape, { dtype }));
    this.inProjWeights = zeros("inProjWeights", [dim, 3 * dim]);
    this.outProjWeights = zeros("outProjWeights", [dim, dim]);
    if (this.bias) {
      this.inProjBiases = zeros("inProjBiases", [3 * dim]);
      this.outProjBiases = zeros("outProjBiases", [dim]);
    }
    const weights: [Param, NestedArray | undefined, number][] = [
      [this.inProjWeights, options.inProjWeights, Math.sqrt(6 / (dim + 3 * dim))],
      [this.outProjWeights, options.outProjWeights, 1 / Math.sqrt(dim)],
    ];
    for (const [param, given, limit] of weights) {
      if (given !== undefined) {
        fillExplicit(param.value, given, param.name, WHERE);
        continue;
      }
      uniform(param.value.data, limit, this.random); // rounded once as each is stored
    }
    for (
      const [param, key] of [[this.inProjBiases, "inProjBiases"], [
        this.outProjBiases,
        "outProjBiases",
      ]] as const
    ) {
      const given = options[key];
      if (given === undefined) continue;
      if (!param) {
        throw new TypeError(`${WHERE}: ${key} were given, but the layer has bias: false`);
      }
      fillExplicit(param.value, given, key, WHERE);
    }
  }

  /** Rebuilds a layer from {@linkcode MultiHeadAttention.config} (weights are drawn anew). */
  static fromConfig(config: JsonObject): MultiHeadAttention {
    const { dim, heads, ...options } = config as unknown as
      & { dim: number; heads: number }
      & MultiHeadAttentionOptions;
    return new MultiHeadAttention(dim, heads, options);
  }

  /** Element type of the parameters. */
  get dtype(): DType {
    return this.inProjWeights.dtype;
  }

  /**
   * `inputs` [batch, T, dim] → outputs [batch, T, dim]. A training forward reuses its
   * buffers (see `ForwardOptions`) and drops attention weights when `dropout` > 0.
   *
   * @throws {TypeError} for inputs that are not `[batch, T, dim]` of the layer's dtype.
   * @throws {RangeError} for empty inputs.
   */
  forward(inputs: Tensor, options?: ForwardOptions): Tensor {
    const [batch, T] = this.#checkInputs(inputs);
    const training = options?.training === true;
    const { dim: D, heads: H, headDim: E, causal, dtype } = this;
    const rows = batch * T, scale = 1 / Math.sqrt(E);
    const backend = getBackend();
    // Training buffers resident where the backend places them, so products use them in place.
    const buffer = (scratch: Scratch, shape: number[]) =>
      training ? scratch.get(dtype, shape, backend) : Tensor.zeros(shape, { dtype });
    const qkv = buffer(this.#qkvBuffer, [rows, 3 * D]).data; // [B·T, 3·D]
    project(backend, inputs.data, this.inProjWeights, this.inProjBiases, qkv, rows, D, 3 * D);
    const probs = buffer(this.#probsBuffer, [batch, H, T, T]).data; // [B, H, T, T]
    const concat = buffer(this.#concatBuffer, [rows, D]).data; // [B·T, D]
    const drop = training && this.dropout > 0;
    const shape = { batch, heads: H, T, E, scale, causal };
    this.#mask = this.#dropped = undefined;
    // Without dropout the backend may run the heads where they lie, split across its threads
    // (the same bits); else they are copied into blocks and looped here.
    const split = !drop && backend.attentionForward?.(qkv, probs, concat, shape) === true;
    const heads = split ? undefined : this.#headsForward(qkv, probs, concat, drop, buffer, shape);
    const outputs = buffer(this.#outputs, [batch, T, D]); // [B, T, D]
    project(backend, concat, this.outProjWeights, this.outProjBiases, outputs.data, rows, D, D);
    this.#inputs = inputs;
    this.#training = training;
    this.#qkv = qkv;
    this.#heads = heads;
    this.#probs = probs;
    this.#concat = concat;
    return outputs;
  }

  // dOut: dconcat = dvalues·Woᵀ   dWo += concatᵀ·dvalues   dbo += Σ_rows dvalues
  // per head: dv = wᵀ·dattended   dw = dattended·vᵀ   dscores = softmax'(dw)/√E
  //           dq = dscores·k      dk = dscoresᵀ·q      (w: the probs, after dropout)
  // dIn: dinputs = dqkv·Winᵀ   dWin += inputsᵀ·dqkv   dbin += Σ_rows dqkv
  /**
   * `dvalues` [batch, T, dim] → dinputs [batch, T, dim], left uncomputed when
   * `options.inputGradient` is false; adds the gradients of all four params.
   *
   * @throws {Error} before any forward; {TypeError} for dvalues unlike the last outputs.
   */
  backward(dvalues: Tensor, options?: BackwardOptions): Tensor {
    const inputs = this.#inputs;
    if (!inputs) throw new Error("MultiHeadAttention.backward: call forward first");
    if (
      !(dvalues instanceof Tensor) || dvalues.dtype !== inputs.dtype || dvalues.rank !== 3 ||
      dvalues.shape.some((d, i) => d !== inputs.shape[i])
    ) {
      const got = dvalues instanceof Tensor
        ? `${dvalues.dtype} ${formatShape(dvalues.shape)}`
        : describeKind(dvalues);
      throw new TypeError(
        `MultiHeadAttention.backward: dvalues is ${got}, expected ${inputs.dtype} ${
          formatShape(inputs.shape)
        } like the last forward's outputs`,
      );
    }
    const [batch, T] = inputs.shape;
    const { dim: D, heads: H, headDim: E, causal, dtype } = this;
    const rows = batch * T, scale = 1 / Math.sqrt(E);
    const training = this.#training;
    const backend = getBackend();
    // Training buffers resident where the backend places them, so products use them in place.
    const buffer = (scratch: Scratch, shape: number[]) =>
      training ? scratch.get(dtype, shape, backend) : Tensor.zeros(shape, { dtype });
    const dv = dvalues.data, concat = this.#concat!;
    backend.matmulTransA(concat, dv, this.outProjWeights.grad.data, rows, D, D, true);
    if (this.outProjBiases) backend.sumColumns(dv, this.outProjBiases.grad.data, rows, D, true);
    const dconcat = buffer(this.#dconcatBuffer, [rows, D]).data; // [B·T, D]
    backend.matmulTransB(dv, this.outProjWeights.value.data, dconcat, rows, D, D);
    const dqkvRows = buffer(this.#dqkvBuffer, [rows, 3 * D]).data; // [B·T, 3·D]
    const qkv = this.#qkv!, probs = this.#probs!, shape = { batch, heads: H, T, E, scale, causal };
    const split = !this.#mask &&
      backend.attentionBackward?.(qkv, probs, dconcat, dqkvRows, shape) === true;
    if (!split) this.#headsBackward(dconcat, dqkvRows, buffer, shape);
    const x = inputs.data;
    backend.matmulTransA(x, dqkvRows, this.inProjWeights.grad.data, rows, D, 3 * D, true);
    if (this.inProjBiases) {
      backend.sumColumns(dqkvRows, this.inProjBiases.grad.data, rows, 3 * D, true);
    }
    if (options?.inputGradient === false) {
      // Not placed in the never-freed shared memory: nobody reads it.
      const shape = [batch, T, D];
      return training ? this.#dinputs.get(dtype, shape) : Tensor.zeros(shape, { dtype });
    }
    const dinputs = buffer(this.#dinputs, [batch, T, D]); // [B, T, D]
    backend.matmulTransB(dqkvRows, this.inProjWeights.value.data, dinputs.data, rows, D, 3 * D);
    return dinputs;
  }

  // The per-head loop of forward, where the backend does not run it: q, k, v copied into
  // head-contiguous blocks, their products on the backend, the attended values copied back
  // into concat's rows. Returns the blocks, which backward reuses.
  #headsForward(
    qkv: FloatArray, // [B·T, 3·D]
    probs: FloatArray, // [B, H, T, T]
    concat: FloatArray, // [B·T, D]
    drop: boolean,
    buffer: (scratch: Scratch, shape: number[]) => Tensor,
    { batch, heads: H, T, E, scale, causal }: AttentionShape,
  ): FloatArray {
    const backend = getBackend(), pairs = batch * H;
    const heads = buffer(this.#headsBuffer, [3, batch, H, T, E]).data; // [3, B, H, T, E]
    splitHeads(qkv, heads, batch, T, H, E, 3);
    const attended = buffer(this.#attendedBuffer, [batch, H, T, E]).data; // [B, H, T, E]
    const mask = drop ? buffer(this.#maskBuffer, [batch, H, T, T]).data : undefined;
    const dropped = drop ? buffer(this.#droppedBuffer, [batch, H, T, T]).data : undefined;
    const qkvBlocks = blocks(heads, T * E), p = blocks(probs, T * T);
    const a = blocks(attended, T * E);
    const m = mask && blocks(mask, T * T), w = dropped ? blocks(dropped, T * T) : p;
    for (let i = 0; i < pairs; i++) {
      const q = qkvBlocks[i], k = qkvBlocks[pairs + i], v = qkvBlocks[2 * pairs + i];
      backend.matmulTransB(q, k, p[i], T, T, E); // scores = q·kᵀ [T, T]
      softmaxRows(p[i], T, scale, causal);
      if (m) dropWeights(p[i], m[i], w[i], T, this.dropout, causal, this.random);
      backend.matmul(w[i], v, a[i], T, T, E); // attended = probs·v [T, E]
    }
    mergeHeads(attended, concat, batch, T, H, E, 1);
    this.#mask = mask;
    this.#dropped = dropped;
    return heads;
  }

  // The per-head loop of backward, where the backend does not run it: d(concat) copied into
  // head-contiguous blocks, the products on the backend, dq | dk | dv copied back into rows.
  #headsBackward(
    dconcat: FloatArray, // [B·T, D]
    dqkvRows: FloatArray, // [B·T, 3·D]
    buffer: (scratch: Scratch, shape: number[]) => Tensor,
    { batch, heads: H, T, E, scale, causal }: AttentionShape,
  ): void {
    const backend = getBackend(), pairs = batch * H;
    let heads = this.#heads;
    if (!heads) {
      // Forward's heads ran on the backend, which declined backward's: block them now.
      heads = buffer(this.#headsBuffer, [3, batch, H, T, E]).data; // [3, B, H, T, E]
      splitHeads(this.#qkv!, heads, batch, T, H, E, 3);
    }
    const dattended = buffer(this.#dattendedBuffer, [batch, H, T, E]).data; // [B, H, T, E]
    splitHeads(dconcat, dattended, batch, T, H, E, 1);
    const dheads = buffer(this.#dheadsBuffer, [3, batch, H, T, E]).data; // [3, B, H, T, E]
    const dprobs = buffer(this.#dprobsBuffer, [T, T]).data; // [T, T]
    const qkv = blocks(heads, T * E), dqkv = blocks(dheads, T * E);
    const da = blocks(dattended, T * E), p = blocks(this.#probs!, T * T);
    const m = this.#mask && blocks(this.#mask, T * T);
    const w = this.#dropped ? blocks(this.#dropped, T * T) : p;
    for (let i = 0; i < pairs; i++) {
      const q = qkv[i], k = qkv[pairs + i], v = qkv[2 * pairs + i];
      backend.matmulTransA(w[i], da[i], dqkv[2 * pairs + i], T, T, E); // dv = wᵀ·dattended
      backend.matmulTransB(da[i], v, dprobs, T, T, E); // dw = dattended·vᵀ
      softmaxRowsBackward(p[i], dprobs, m?.[i], T, scale, causal); // → dscores
      backend.matmul(dprobs, k, dqkv[i], T, T, E); // dq = dscores·k
      backend.matmulTransA(dprobs, q, dqkv[pairs + i], T, T, E); // dk = dscoresᵀ·q
    }
    mergeHeads(dheads, dqkvRows, batch, T, H, E, 3);
  }

  /**
   * {@linkcode MultiHeadAttention.forward} on the device: `inputs` [batch, T, dim] → outputs
   * [batch, T, dim]. Dropout masks (training, `dropout` > 0) are a hash of a key drawn once
   * from `random`, `ctx.step` and the weight's index: as likely as the CPU's, not the same.
   */
  gpuForward(ctx: GpuContext, inputs: GpuTensor, options?: GpuForwardOptions): GpuTensor {
    const [batch, T] = this.#checkGpuInputs(inputs);
    const { dim: D, heads: H, headDim: E } = this;
    const rows = batch * T, pairs = batch * H, headShape = [pairs, T, E];
    const qkv = ctx.buffer(this, "qkv", [rows, 3 * D]); // [B·T, 3·D]
    this.#gpuProject(ctx, "in projection", inputs, this.inProjWeights, this.inProjBiases, qkv);
    const q = ctx.buffer(this, "q", headShape); // [B·H, T, E]
    const k = ctx.buffer(this, "k", headShape); // [B·H, T, E]
    const v = ctx.buffer(this, "v", headShape); // [B·H, T, E]
    gpuSplitHeads(ctx, this, "split qkv", qkv, [q, k, v], batch, T, H, E);
    const probs = ctx.buffer(this, "probs", [pairs, T, T]); // [B·H, T, T]
    gpuMatmul(ctx, this, "scores", q, k, probs, T, E, T, { transB: true, batch: pairs });
    gpuSoftmaxRows(ctx, this, "softmax", probs, pairs * T, T, 1 / Math.sqrt(E), this.causal);
    let weights = probs; // [B·H, T, T]: what multiplies v
    this.#gpuMask = undefined;
    if (options?.training === true && this.dropout > 0) {
      this.#gpuKey ??= this.random.nextUint32();
      this.#gpuMask = { rate: this.dropout, key: this.#gpuKey, step: ctx.step };
      weights = ctx.buffer(this, "dropped", [pairs, T, T]);
      gpuDropWeights(ctx, this, "dropout", probs, weights, this.#gpuMask);
    }
    const attended = ctx.buffer(this, "attended", headShape); // [B·H, T, E]
    gpuMatmul(ctx, this, "attend", weights, v, attended, T, T, E, { batch: pairs });
    const concat = ctx.buffer(this, "concat", [rows, D]); // [B·T, D]
    gpuMergeHeads(ctx, this, "merge heads", [attended], concat, batch, T, H, E);
    const outputs = ctx.buffer(this, "outputs", [batch, T, D]); // [B, T, D]
    this.#gpuProject(
      ctx,
      "out projection",
      concat,
      this.outProjWeights,
      this.outProjBiases,
      outputs,
    );
    this.#gpuInputs = inputs;
    return outputs;
  }

  // dOut: dconcat = dvalues·Woᵀ   dWo += concatᵀ·dvalues   dbo += Σ_rows dvalues
  // per head: dv = wᵀ·dattended   dw = dattended·vᵀ   dscores = softmax'(dw)/√E
  //           dq = dscores·k      dk = dscoresᵀ·q      (w: the probs, after dropout)
  // dIn: dinputs = dqkv·Winᵀ   dWin += inputsᵀ·dqkv   dbin += Σ_rows dqkv
  /**
   * {@linkcode MultiHeadAttention.backward} on the device: `dvalues` [batch, T, dim] →
   * dinputs [batch, T, dim] (left uncomputed when `options.inputGradient` is false); adds
   * the gradients of all four params. Every per-head product is one batched dispatch over
   * the batch·heads pairs.
   */
  gpuBackward(ctx: GpuContext, dvalues: GpuTensor, options?: GpuBackwardOptions): GpuTensor {
    const inputs = this.#gpuInputs;
    if (!inputs) throw new Error("MultiHeadAttention.gpuBackward: call gpuForward first");
    const [batch, T] = inputs.shape;
    if (dvalues.size !== inputs.size) {
      throw new TypeError(
        `MultiHeadAttention.gpuBackward: dvalues has shape ${
          formatShape(dvalues.shape)
        }, expected ${formatShape(inputs.shape)} like the last gpuForward's outputs`,
      );
    }
    const { dim: D, heads: H, headDim: E } = this;
    const rows = batch * T, pairs = batch * H, headShape = [pairs, T, E];
    const mask = this.#gpuMask;
    const q = ctx.buffer(this, "q", headShape), k = ctx.buffer(this, "k", headShape);
    const v = ctx.buffer(this, "v", headShape);
    const probs = ctx.buffer(this, "probs", [pairs, T, T]);
    const weights = mask ? ctx.buffer(this, "dropped", [pairs, T, T]) : probs;
    const concat = ctx.buffer(this, "concat", [rows, D]);
    const outW = ctx.param(this.outProjWeights), inW = ctx.param(this.inProjWeights);
    gpuMatmul(ctx, this, "dWo", concat, dvalues, outW.grad, D, rows, D, {
      transA: true,
      accumulate: true,
    });
    if (this.outProjBiases) {
      const grad = ctx.param(this.outProjBiases).grad;
      gpuSumColumns(ctx, this, "dbo", dvalues, grad, rows, D, true);
    }
    const dconcat = ctx.buffer(this, "dconcat", [rows, D]); // [B·T, D]
    gpuMatmul(ctx, this, "dconcat", dvalues, outW.value, dconcat, rows, D, D, { transB: true });
    const dattended = ctx.buffer(this, "dattended", headShape); // [B·H, T, E]
    gpuSplitHeads(ctx, this, "split dconcat", dconcat, [dattended], batch, T, H, E);
    const dq = ctx.buffer(this, "dq", headShape); // [B·H, T, E]
    const dk = ctx.buffer(this, "dk", headShape); // [B·H, T, E]
    const dv = ctx.buffer(this, "dv", headShape); // [B·H, T, E]
    const dprobs = ctx.buffer(this, "dprobs", [pairs, T, T]); // [B·H, T, T], then dscores
    gpuMatmul(ctx, this, "dv", weights, dattended, dv, T, T, E, { transA: true, batch: pairs });
    gpuMatmul(ctx, this, "dprobs", dattended, v, dprobs, T, E, T, { transB: true, batch: pairs });
    const scale = 1 / Math.sqrt(E);
    gpuSoftmaxRowsBackward(
      ctx,
      this,
      "softmax backward",
      probs,
      dprobs,
      pairs * T,
      T,
      scale,
      this.causal,
      mask,
    );
    gpuMatmul(ctx, this, "dq", dprobs, k, dq, T, T, E, { batch: pairs });
    gpuMatmul(ctx, this, "dk", dprobs, q, dk, T, T, E, { transA: true, batch: pairs });
    const dqkv = ctx.buffer(this, "dqkv", [rows, 3 * D]); // [B·T, 3·D]
    gpuMergeHeads(ctx, this, "merge dqkv", [dq, dk, dv], dqkv, batch, T, H, E);
    gpuMatmul(ctx, this, "dWin", inputs, dqkv, inW.grad, D, rows, 3 * D, {
      transA: true,
      accumulate: true,
    });
    if (this.inProjBiases) {
      const grad = ctx.param(this.inProjBiases).grad;
      gpuSumColumns(ctx, this, "dbin", dqkv, grad, rows, 3 * D, true);
    }
    const dinputs = ctx.buffer(this, "dinputs", inputs.shape); // [B, T, D]
    if (options?.inputGradient === false) return dinputs;
    gpuMatmul(ctx, this, "dinputs", dqkv, inW.value, dinputs, rows, 3 * D, D, { transB: true });
    return dinputs;
  }

  // out [B·T, n] = x [B·T, D]·W [D, n] (+ b [n]) on the device, as `project` on the CPU.
  #gpuProject(
    ctx: GpuContext,
    key: string,
    x: GpuTensor,
    weights: Param,
    biases: Param | undefined,
    out: GpuTensor,
  ): void {
    const n = weights.value.shape[1], rows = x.size / this.dim;
    const bias = biases && ctx.param(biases).value;
    gpuMatmul(ctx, this, key, x, ctx.param(weights).value, out, rows, this.dim, n, { bias });
  }

  /** `[inProjWeights, inProjBiases, outProjWeights, outProjBiases]`, biases only with bias. */
  params(): Param[] {
    return [this.inProjWeights, this.inProjBiases, this.outProjWeights, this.outProjBiases]
      .filter((param): param is Param => param !== undefined);
  }

  /**
   * PyTorch's `nn.MultiheadAttention` names: `in_proj_weight` (the transpose,
   * `[3·dim, dim]`), `in_proj_bias`, `out_proj.weight` (the transpose) and `out_proj.bias`.
   */
  torchNames(): Record<string, TorchName> {
    return {
      inProjWeights: { torch: "in_proj_weight", transpose: true },
      inProjBiases: { torch: "in_proj_bias" },
      outProjWeights: { torch: "out_proj.weight", transpose: true },
      outProjBiases: { torch: "out_proj.bias" },
    };
  }

  /** `{ dim, heads, causal, bias, dropout, dtype }`, and `seed` when one was given. */
  config(): JsonObject {
    const config: JsonObject = {
      dim: this.dim,
      heads: this.heads,
      causal: this.causal,
      bias: this.bias,
      dropout: this.dropout,
      dtype: this.dtype,
    };
    if (this.seed !== undefined) config.seed = this.seed;
    return config;
  }

  /** `MultiHeadAttention(dim=128, heads=4, causal=true)`, with what is not the default. */
  toString(): string {
    const extra = (this.causal ? ", causal=true" : "") + (this.bias ? "" : ", bias=false") +
      (this.dropout !== 0 ? `, dropout=${this.dropout}` : "");
    return `MultiHeadAttention(dim=${this.dim}, heads=${this.heads}${extra})`;
  }

  // [batch, T] of checked inputs.
  #checkInputs(inputs: Tensor): [number, number] {
    const where = "MultiHeadAttention.forward";
    expectTensor(inputs, where);
    const shape = () => formatShape(inputs.shape); // for the messages only
    if (inputs.rank !== 3) {
      throw new TypeError(`${where}: inputs must be [batch, T, dim], got shape ${shape()}`);
    }
    const [batch, T, features] = inputs.shape;
    if (features !== this.dim) {
      throw new TypeError(
        `${where}: inputs have ${features} features per position, expected dim ${this.dim} (inputs shape ${shape()})`,
      );
    }
    if (inputs.dtype !== this.dtype) {
      throw new TypeError(
        `${where}: inputs are ${inputs.dtype}, the layer is ${this.dtype} (convert with tensor.clone({ dtype: "${this.dtype}" }))`,
      );
    }
    if (inputs.size === 0) throw new RangeError(`${where}: inputs is empty (shape ${shape()})`);
    return [batch, T];
  }

  // [batch, T] of inputs checked for the GPU side (their values stay on the device).
  #checkGpuInputs(inputs: GpuTensor): [number, number] {
    const where = "MultiHeadAttention.gpuForward";
    const shape = inputs.shape;
    if (shape.length !== 3 || shape[2] !== this.dim) {
      throw new TypeError(
        `${where}: inputs must be [batch, T, ${this.dim}], got shape ${formatShape(shape)}`,
      );
    }
    if (inputs.dtype !== "float32") {
      throw new TypeError(`${where}: inputs must be float32 on the device, got ${inputs.dtype}`);
    }
    if (inputs.size === 0) {
      throw new RangeError(`${where}: inputs is empty (shape ${formatShape(shape)})`);
    }
    return [shape[0], shape[1]];
  }
}

// out[rows, n] = x[rows, k]·W[k, n] (+ b[n]), one product over all rows, as Dense does.
function project(
  backend: Backend,
  x: FloatArray,
  weights: Param,
  biases: Param | undefined,
  out: FloatArray,
  rows: number,
  k: number,
  n: number,
): void {
  const w = weights.value.data;
  if (!biases) return backend.matmul(x, w, out, rows, k, n);
  const b = biases.value.data;
  if (backend.matmulBias) return backend.matmulBias(x, w, b, out, rows, k, n);
  backend.matmul(x, w, out, rows, k, n);
  backend.addBias(out, b, rows, n);
}
