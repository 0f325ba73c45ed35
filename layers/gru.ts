import { getBackend } from "../backends/selection.ts";
import type { JsonObject } from "../core/json.ts";
import type { BackwardOptions, ForwardOptions, Layer, TorchName } from "../core/layer.ts";
import type { Param } from "../core/param.ts";
import type { RandomOptions } from "../core/random.ts";
import { Scratch } from "../core/_scratch.ts";
import type { DType, FloatArray, NestedArray, Tensor } from "../core/tensor.ts";
import {
  flatIndex,
  type GpuBackwardOptions,
  type GpuContext,
  type GpuForwardOptions,
  type GpuLayer,
  type GpuTensor,
  gridFor,
} from "../core/gpu.ts";
import { gpuMatmul, kernel } from "../backends/webgpu_ops.ts";
import { gruBackwardRows, gruForwardRows } from "../backends/_gru_tasks.ts";
import {
  CELL_UNIFORMS,
  cellUniforms,
  GATE_FUNCTIONS,
  Recurrent,
  RECURRENT_TORCH_NAMES,
  rightProduct,
  type SequenceCache,
  StepViews,
} from "./_recurrent.ts";

// Dimension letters: B batch, T time steps, I = inputSize, H = hidden, G = 3·H gate columns
// (r | z | n). Sequences are kept time-major inside, [T, B, ·], so that each step's rows
// are contiguous. The GPU side keeps the same layout in buffers of its own.

// What a forward leaves for backward, besides the base's buffers: a view, time-major.
interface GRUCache extends SequenceCache {
  recurrent: FloatArray; // [T, B, G]: h_{t−1}·U + b_h (backward reads its n part)
}

/** Options of {@linkcode GRU}. */
export interface GRUOptions extends RandomOptions {
  /** True (the default): outputs every step's hidden state; false: only the last one. */
  returnSequences?: boolean;
  /** Element type of the parameters; `"float32"` when omitted. */
  dtype?: DType;
  /** Initial input weights `[inputSize, 3·hidden]`, gate columns r, z, n. */
  inputWeights?: NestedArray;
  /** Initial recurrent weights `[hidden, 3·hidden]`. */
  recurrentWeights?: NestedArray;
  /** Initial input biases `[3·hidden]`. */
  inputBiases?: NestedArray;
  /** Initial recurrent biases `[3·hidden]`. */
  recurrentBiases?: NestedArray;
}

/**
 * Gated recurrent unit (Cho et al. 2014), one layer, as PyTorch's
 * `nn.GRU(inputSize, hidden, batch_first=True)` computes it from a zero initial state:
 *
 * ```text
 * r = σ(x·W_r + b_ir + h·U_r + b_hr)    z = σ(x·W_z + b_iz + h·U_z + b_hz)
 * n = tanh(x·W_n + b_in + r⊙(h·U_n + b_hn))
 * h' = (1 − z)⊙n + z⊙h
 * ```
 *
 * Shapes: inputs `[batch, T, inputSize]` → outputs `[batch, T, hidden]` (every step's h), or
 * `[batch, hidden]` (the last step's) with `returnSequences: false`.
 *
 * The params, in PyTorch's order: `inputWeights` `[inputSize, 3·hidden]` (kept `[in, out]`
 * like `Dense`, gate columns r | z | n: the transpose of `weight_ih_l0`), `recurrentWeights`
 * `[hidden, 3·hidden]` (`weight_hh_l0`ᵀ), `inputBiases` `[3·hidden]` (`bias_ih_l0`) and
 * `recurrentBiases` `[3·hidden]` (`bias_hh_l0`), all drawn from U(−1/√hidden, 1/√hidden)
 * unless given.
 *
 * The input projection of all steps is one product; each step computes `h·U + b_h` (one
 * product), kept for backward since r multiplies its n part, and runs the gates in one
 * loop. Backward (through time) does one product per step, and the weight gradients and
 * d(inputs) as single products after it. A float32 training pass may hand the steps to the
 * backend (`Backend.gruForward`, `gruBackward`): the wasm backend splits the batch rows across
 * its worker pool, with the same bits on any thread count. The GPU side (`fitAsync` with `device: "webgpu"`)
 * does the same products, each step's gates in one kernel.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { GRU, Tensor } from "@chainrule/nn";
 *
 * // One unit, one input: z = σ(0) = 0.5, n = tanh(x), so h = 0.5·tanh(x) from h₀ = 0.
 * const gru = new GRU(1, 1, {
 *   inputWeights: [[0, 0, 1]],
 *   recurrentWeights: [[0, 0, 0]],
 *   inputBiases: [0, 0, 0],
 *   recurrentBiases: [0, 0, 0],
 *   dtype: "float64",
 *   returnSequences: false,
 * });
 * const h = gru.forward(Tensor.from([[[0.5]]], { dtype: "float64" }));
 * assert.deepEqual(h.shape, [1, 1]);
 * assert.ok(Math.abs(h.get(0, 0) - 0.5 * Math.tanh(0.5)) < 1e-15);
 * ```
 */
export class GRU extends Recurrent implements Layer, GpuLayer {
  /** Registry name. */
  readonly kind = "GRU";
  /** Features per input step (I). */
  declare readonly inputSize: number;
  /** Hidden units (H). */
  declare readonly hidden: number;
  /** Whether outputs hold every step (`[batch, T, hidden]`) or the last (`[batch, hidden]`). */
  declare readonly returnSequences: boolean;
  /** `[inputSize, 3·hidden]` */
  declare readonly inputWeights: Param;
  /** `[hidden, 3·hidden]` */
  declare readonly recurrentWeights: Param;
  /** `[3·hidden]` */
  declare readonly inputBiases: Param;
  /** `[3·hidden]` */
  declare readonly recurrentBiases: Param;
  #cache?: GRUCache; // what the last forward left for backward
  #recurrent = new Scratch(); // [T, B, G]: h_{t−1}·U + b_h
  #drecurrent = new Scratch(); // [T, B, G]: d(loss)/d(h_{t−1}·U + b_h)
  #recurrentViews = new StepViews(); // [B, G] per step of #recurrent
  #drecurrentViews = new StepViews(); // [B, G] per step of #drecurrent

  /**
   * Creates the layer, drawing the params from U(−1/√hidden, 1/√hidden) unless given.
   *
   * @throws {RangeError} for sizes that are not positive integers; {TypeError} for a bad
   * dtype or `returnSequences`, or given params of the wrong shape.
   */
  constructor(inputSize: number, hidden: number, options: GRUOptions = {}) {
    super("new GRU", inputSize, hidden, 3, options);
  }

  /** Rebuilds a layer from {@linkcode GRU.config} (params are drawn anew). */
  static fromConfig(config: JsonObject): GRU {
    const { inputSize, hidden, ...options } = config as unknown as
      & { inputSize: number; hidden: number }
      & GRUOptions;
    return new GRU(inputSize, hidden, options);
  }

  /** Element type of the parameters. */
  get dtype(): DType {
    return this.inputWeights.dtype;
  }

  /**
   * `inputs` [batch, T, inputSize] → outputs [batch, T, hidden] (or [batch, hidden]). A
   * training forward reuses its output buffer (see `ForwardOptions`).
   *
   * @throws {TypeError} for inputs that are not 3-D, have the wrong feature count or dtype;
   * {RangeError} for an empty batch or T = 0.
   */
  forward(inputs: Tensor, options?: ForwardOptions): Tensor {
    const start = this.startForward(inputs, options);
    const { batch: B, steps: T, gates, hiddens, hiddenViews } = start;
    const { dtype, hidden: H } = this;
    const G = 3 * H;
    const backend = getBackend();
    this.projectInputs(start, this.inputBiases.value.data);
    const resident = options?.training === true ? backend : undefined;
    const recurrent = this.#recurrent.get(dtype, [T, B, G], resident).data; // [T, B, G]
    const U = this.recurrentWeights.value.data, bh = this.recurrentBiases.value.data;
    // The backend's split of the batch rows (the same bits), else this thread's loop.
    const [g, r, h, u, c] = [gates, recurrent, hiddens, U, bh] as Float32Array[];
    const split = gates instanceof Float32Array &&
      backend.gruForward?.(g, r, h, u, c, B, T, H) === true;
    if (!split) this.#recurrence(gates, recurrent, hiddens, hiddenViews, B, T);
    this.#cache = { ...start, recurrent };
    return this.finishForward(start);
  }

  // Forward's steps on this thread: recurrent_t = b_h + h_{t−1}·U, then the cells.
  #recurrence(
    gates: FloatArray, // [T, B, G]
    recurrent: FloatArray, // [T, B, G]
    hiddens: FloatArray, // [T, B, H]
    hiddenViews: FloatArray[], // T × [B, H]
    B: number,
    T: number,
  ): void {
    const H = this.hidden, G = 3 * H;
    const recurrentViews = this.#recurrentViews.of(recurrent, B * G, T);
    // h·U by U packed once for all steps, added to the biases (h₀ = 0 leaves them alone).
    const byU = rightProduct(getBackend(), this.recurrentWeights.value.data, H, G, false); // [H, G]
    const bh = this.recurrentBiases.value.data; // [G]
    for (let t = 0; t < T; t++) {
      for (let b = 0; b < B; b++) recurrentViews[t].set(bh, b * G);
      if (t > 0) byU(hiddenViews[t - 1], recurrentViews[t], B, true);
      gruForwardRows(gates, recurrent, hiddens, t, B, H, 0, B);
    }
  }

  // dh_{t−1} = dvalues_{t−1} + dh_t⊙z + drec_t·Uᵀ (gruBackwardRows, then the product)
  // dW += Xᵀ·dgates   dU += H_{t−1}ᵀ·drec   db_i += Σ dgates   db_h += Σ drec   dinputs = dgates·Wᵀ
  /**
   * `dvalues` [batch, T, hidden] (or [batch, hidden]) → dinputs [batch, T, inputSize], left
   * uncomputed when `options.inputGradient` is false.
   *
   * @throws {Error} before any forward; {TypeError} when `dvalues` is not shaped like the
   * last forward's outputs.
   */
  backward(dvalues: Tensor, options?: BackwardOptions): Tensor {
    const cache = this.#cache;
    if (!cache) throw new Error("GRU.backward: call forward first");
    const { dgates, dh } = this.startBackward(dvalues, cache);
    const { batch: B, steps: T, gates, recurrent, hiddens } = cache;
    const { dtype, hidden: H } = this;
    const G = 3 * H;
    const drecurrent = this.#drecurrent.get(dtype, [T, B, G], this.residentBackend()).data; // [T, B, G]
    const dv = dvalues.data; // [B, T, H] or [B, H]
    const U = this.recurrentWeights.value.data; // [H, G]
    const backend = getBackend();
    const [g, r, h, d, dg, dr, u] = [
      gates,
      recurrent,
      hiddens,
      dv,
      dgates,
      drecurrent,
      U,
    ] as Float32Array[];
    // The backend's split of the batch rows (the same bits), else this thread's loop.
    const split = g instanceof Float32Array &&
      backend.gruBackward?.(g, r, h, d, this.returnSequences, dg, dr, u, B, T, H) === true;
    if (!split) {
      const drecurrentViews = this.#drecurrentViews.of(drecurrent, B * G, T);
      const byUT = rightProduct(backend, U, G, H, true); // Uᵀ
      for (let t = T - 1; t >= 0; t--) {
        this.addOutputGradient(dv, dh, t, cache);
        gruBackwardRows(gates, recurrent, hiddens, dgates, drecurrent, dh, t, B, H, 0, B);
        // h₀ is a constant: nothing flows back from the first step.
        if (t > 0) byUT(drecurrentViews[t], dh, B, true);
      }
    }
    return this.finishBackward(cache, dgates, drecurrent, options);
  }

  /**
   * {@linkcode GRU.forward} on the device: `inputs` [batch, T, inputSize] → outputs
   * [batch, T, hidden] (or [batch, hidden]). Per step, one product (`h·U + b_h`) and one
   * cell kernel.
   *
   * @throws {TypeError} for inputs that are not float32 `[batch, T, inputSize]`;
   * {RangeError} for an empty batch or T = 0.
   */
  gpuForward(ctx: GpuContext, inputs: GpuTensor, _options?: GpuForwardOptions): GpuTensor {
    const H = this.hidden, G = 3 * H;
    const bi = ctx.param(this.inputBiases).value, bh = ctx.param(this.recurrentBiases).value;
    const cache = this.gpuStartForward(ctx, inputs, bi);
    const { batch: B, steps: T, gates, hiddens, outputs } = cache;
    const U = ctx.param(this.recurrentWeights).value; // [H, G]
    const recurrent = ctx.buffer(this, "recurrent", [T, B, G]); // [T, B, G]: h_{t−1}·U + b_h
    const cell = kernel("GRU cell", CELL_FORWARD);
    for (let t = 0; t < T; t++) {
      // h₀ = 0: the first step's recurrent term is b_h, which the cell kernel writes.
      if (t > 0) {
        gpuMatmul(ctx, this, `recurrent ${t}`, hiddens, U, recurrent, B, H, G, {
          bias: bh,
          offsetA: (t - 1) * B * H,
          offsetC: t * B * G,
        });
      }
      const words = cellUniforms(cache, H, t, this.returnSequences);
      const tensors = [gates, recurrent, bh, hiddens, outputs];
      ctx.run(this, `cell ${t}`, cell, tensors, words, gridFor(B * H));
    }
    return outputs;
  }

  // dh_{t−1} = dvalues_{t−1} + dh_t⊙z + drec_t·Uᵀ (the cell kernel, then the product)
  // dW += Xᵀ·dgates   dU += H_{t−1}ᵀ·drec   db_i += Σ dgates   db_h += Σ drec   dinputs = dgates·Wᵀ
  /**
   * {@linkcode GRU.backward} on the device: `dvalues` [batch, T, hidden] (or [batch,
   * hidden]) → dinputs [batch, T, inputSize], left uncomputed when `options.inputGradient`
   * is false. Per step, one cell kernel and one product (`dh += drec·Uᵀ`); the gradients
   * one product or column sum each over all steps.
   *
   * @throws {Error} before any gpuForward; {TypeError} when `dvalues` is not shaped like the
   * last gpuForward's outputs.
   */
  gpuBackward(ctx: GpuContext, dvalues: GpuTensor, options?: GpuBackwardOptions): GpuTensor {
    const start = this.gpuStartBackward(ctx, dvalues);
    const { batch: B, steps: T, gates, hiddens, dgates, dh } = start;
    const H = this.hidden, G = 3 * H;
    const U = ctx.param(this.recurrentWeights).value; // [H, G]
    const recurrent = ctx.buffer(this, "recurrent", [T, B, G]); // [T, B, G]
    const drecurrent = ctx.buffer(this, "drecurrent", [T, B, G]); // [T, B, G]
    const cell = kernel("GRU cell backward", CELL_BACKWARD);
    for (let t = T - 1; t >= 0; t--) {
      const words = cellUniforms(start, H, t, this.returnSequences);
      const tensors = [gates, recurrent, hiddens, dvalues, dgates, drecurrent, dh];
      ctx.run(this, `cell backward ${t}`, cell, tensors, words, gridFor(B * H));
      // h₀ is a constant: nothing flows back from the first step.
      if (t > 0) {
        gpuMatmul(ctx, this, `dh ${t}`, drecurrent, U, dh, B, G, H, {
          transB: true,
          accumulate: true,
          offsetA: t * B * G,
        });
      }
    }
    return this.gpuFinishBackward(ctx, start, dgates, drecurrent, options);
  }

  /** `[inputWeights, recurrentWeights, inputBiases, recurrentBiases]` */
  params(): Param[] {
    return [this.inputWeights, this.recurrentWeights, this.inputBiases, this.recurrentBiases];
  }

  /**
   * PyTorch's `nn.GRU` names: `weight_ih_l0` and `weight_hh_l0` (transposed, `[3·hidden,
   * in]`), `bias_ih_l0`, `bias_hh_l0`.
   */
  torchNames(): Record<string, TorchName> {
    return { ...RECURRENT_TORCH_NAMES };
  }

  /** Constructor arguments as JSON (without the params, which are saved as tensors). */
  config(): JsonObject {
    return {
      inputSize: this.inputSize,
      hidden: this.hidden,
      returnSequences: this.returnSequences,
      dtype: this.dtype,
    };
  }

  /** `GRU(inputSize=64, hidden=256)`, with `returnSequences=false` when set. */
  override toString(): string {
    const last = this.returnSequences ? "" : ", returnSequences=false";
    return `GRU(inputSize=${this.inputSize}, hidden=${this.hidden}${last})`;
  }
}

// ---- The GPU side ------------------------------------------------------------------------

// Step t's gates and h on the device, as gruForwardRows: one invocation per (b, j) takes the
// recurrent terms of its three columns (b_h at step 0, which it writes into `recurrent` for
// backward), turns `gates` into r, z, n in place and writes h at step t of `hiddens`, and
// into the outputs (at [b, t, j], or at [b, j] on the last step).
const CELL_FORWARD = /* wgsl */ `
${CELL_UNIFORMS}
@group(0) @binding(1) var<storage, read_write> gates: array<f32>; // [T, B, G]
@group(0) @binding(2) var<storage, read_write> recurrent: array<f32>; // [T, B, G]
@group(0) @binding(3) var<storage, read> recurrentBiases: array<f32>; // [G]
@group(0) @binding(4) var<storage, read_write> hiddens: array<f32>; // [T, B, H]
@group(0) @binding(5) var<storage, read_write> outputs: array<f32>; // [B, T, H] or [B, H]
${GATE_FUNCTIONS}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${flatIndex()}
  let H = p.hidden;
  let BH = p.batch * H;
  if (i >= BH) { return; }
  let b = i / H;
  let j = i % H;
  let row = (p.t * p.batch + b) * 3u * H;
  let at = p.t * BH + i;
  var recR = recurrentBiases[j];
  var recZ = recurrentBiases[H + j];
  var recN = recurrentBiases[2u * H + j];
  if (p.t > 0u) {
    recR = recurrent[row + j];
    recZ = recurrent[row + H + j];
    recN = recurrent[row + 2u * H + j];
  } else {
    recurrent[row + j] = recR;
    recurrent[row + H + j] = recZ;
    recurrent[row + 2u * H + j] = recN;
  }
  let r = logistic(gates[row + j] + recR);
  let z = logistic(gates[row + H + j] + recZ);
  let n = tanhAccurate(gates[row + 2u * H + j] + r * recN);
  var hPrev = 0.0; // h₀ = 0
  if (p.t > 0u) { hPrev = hiddens[at - BH]; }
  gates[row + j] = r;
  gates[row + H + j] = z;
  gates[row + 2u * H + j] = n;
  let h = (1.0 - z) * n + z * hPrev;
  hiddens[at] = h;
  if (p.sequences != 0u) {
    outputs[(b * p.steps + p.t) * H + j] = h;
  } else if (p.t + 1u == p.steps) {
    outputs[i] = h;
  }
}`;

// Step t's gate gradients on the device, as gruBackwardRows, with dh = d(loss)/d(h_t) made here:
// dvalues' step t (every step's outputs) or all of dvalues (the last step's), plus, below
// the last step, what step t + 1 left in dh; out: its direct part dh⊙z of d(loss)/d(h_{t−1}).
// dpre_n = dh⊙(1−z)⊙(1−n²)  dpre_z = dh⊙(h_{t−1}−n)⊙z(1−z)  dpre_r = dpre_n⊙(h·U_n + b_hn)⊙r(1−r)  dgates = [dpre_r, dpre_z, dpre_n]  drec = [dpre_r, dpre_z, dpre_n⊙r]
const CELL_BACKWARD = /* wgsl */ `
${CELL_UNIFORMS}
@group(0) @binding(1) var<storage, read> gates: array<f32>; // [T, B, G]: r, z, n
@group(0) @binding(2) var<storage, read> recurrent: array<f32>; // [T, B, G]
@group(0) @binding(3) var<storage, read> hiddens: array<f32>; // [T, B, H]
@group(0) @binding(4) var<storage, read> dvalues: array<f32>; // [B, T, H] or [B, H]
@group(0) @binding(5) var<storage, read_write> dgates: array<f32>; // [T, B, G]
@group(0) @binding(6) var<storage, read_write> drecurrent: array<f32>; // [T, B, G]
@group(0) @binding(7) var<storage, read_write> dh: array<f32>; // [B, H]
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${flatIndex()}
  let H = p.hidden;
  let BH = p.batch * H;
  if (i >= BH) { return; }
  let b = i / H;
  let j = i % H;
  let last = p.t + 1u == p.steps;
  var dhj = 0.0;
  if (!last) { dhj = dh[i]; }
  if (p.sequences != 0u) {
    dhj += dvalues[(b * p.steps + p.t) * H + j];
  } else if (last) {
    dhj = dvalues[i];
  }
  let row = (p.t * p.batch + b) * 3u * H;
  let at = p.t * BH + i;
  let r = gates[row + j];
  let z = gates[row + H + j];
  let n = gates[row + 2u * H + j];
  var hPrev = 0.0;
  if (p.t > 0u) { hPrev = hiddens[at - BH]; }
  let dn = dhj * (1.0 - z) * (1.0 - n * n);
  let dz = dhj * (hPrev - n) * z * (1.0 - z);
  let dr = dn * recurrent[row + 2u * H + j] * r * (1.0 - r);
  dgates[row + j] = dr;
  dgates[row + H + j] = dz;
  dgates[row + 2u * H + j] = dn;
  drecurrent[row + j] = dr;
  drecurrent[row + H + j] = dz;
  drecurrent[row + 2u * H + j] = dn * r;
  dh[i] = dhj * z;
}`;
