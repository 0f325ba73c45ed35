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
import { gpuMap, gpuMatmul, kernel } from "../backends/webgpu_ops.ts";
import { lstmBackwardRows, lstmForwardRows32 } from "../backends/_recurrent_tasks.ts";
import {
  CELL_UNIFORMS,
  cellUniforms,
  GATE_FUNCTIONS,
  Recurrent,
  RECURRENT_TORCH_NAMES,
  rightProduct,
  type SequenceCache,
  sigmoid,
  StepViews,
  tanh,
} from "./_recurrent.ts";

// Dimension letters: B batch, T time steps, I = inputSize, H = hidden, G = 4·H gate columns
// (i | f | g | o). Sequences are kept time-major inside, [T, B, ·], so that each step's rows
// are contiguous. The GPU side keeps the same layout in buffers of its own.

// What a forward leaves for backward, besides the base's buffers: views, time-major.
interface LSTMCache extends SequenceCache {
  cells: FloatArray; // [T, B, H]
  tanhCells: FloatArray; // [T, B, H]
}

/** Options of {@linkcode LSTM}. */
export interface LSTMOptions extends RandomOptions {
  /** True (the default): outputs every step's hidden state; false: only the last one. */
  returnSequences?: boolean;
  /** Element type of the parameters; `"float32"` when omitted. */
  dtype?: DType;
  /** Initial input weights `[inputSize, 4·hidden]`, gate columns i, f, g, o. */
  inputWeights?: NestedArray;
  /** Initial recurrent weights `[hidden, 4·hidden]`. */
  recurrentWeights?: NestedArray;
  /** Initial input biases `[4·hidden]`. */
  inputBiases?: NestedArray;
  /** Initial recurrent biases `[4·hidden]`. */
  recurrentBiases?: NestedArray;
}

/**
 * Long short-term memory (Hochreiter & Schmidhuber 1997), one layer, as PyTorch's
 * `nn.LSTM(inputSize, hidden, batch_first=True)` computes it from a zero initial state:
 *
 * ```text
 * i = σ(x·W_i + b_ii + h·U_i + b_hi)    f = σ(x·W_f + b_if + h·U_f + b_hf)
 * g = tanh(x·W_g + b_ig + h·U_g + b_hg)  o = σ(x·W_o + b_io + h·U_o + b_ho)
 * c' = f⊙c + i⊙g                        h' = o⊙tanh(c')
 * ```
 *
 * Shapes: inputs `[batch, T, inputSize]` → outputs `[batch, T, hidden]` (every step's h), or
 * `[batch, hidden]` (the last step's) with `returnSequences: false`.
 *
 * The params, in PyTorch's order: `inputWeights` `[inputSize, 4·hidden]` (kept `[in, out]`
 * like `Dense`, gate columns i | f | g | o: the transpose of `weight_ih_l0`),
 * `recurrentWeights` `[hidden, 4·hidden]` (`weight_hh_l0`ᵀ), `inputBiases` `[4·hidden]`
 * (`bias_ih_l0`) and `recurrentBiases` `[4·hidden]` (`bias_hh_l0`), all drawn from
 * U(−1/√hidden, 1/√hidden) unless given.
 *
 * The input projection of all steps is one product; each step adds `h·U` (one product) and
 * runs the gates in one loop. Backward (through time) does one product per step,
 * `dh = dgates·Uᵀ`, and the weight gradients and d(inputs) as single products after it.
 * The GPU side (`fitAsync` with `device: "webgpu"`) does the same products, each step's
 * gates in one kernel.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LSTM, Tensor } from "@chainrule/nn";
 *
 * // One unit, one input; only the cell gate's input weight and the input gate's bias are set.
 * const lstm = new LSTM(1, 1, {
 *   inputWeights: [[0, 0, 1, 0]],
 *   recurrentWeights: [[0, 0, 0, 0]],
 *   inputBiases: [100, 0, 0, 0], // i ≈ 1
 *   recurrentBiases: [0, 0, 0, 0],
 *   dtype: "float64",
 * });
 * const h = lstm.forward(Tensor.from([[[0.5]]], { dtype: "float64" }));
 * // f = o = σ(0) = 0.5, g = tanh(0.5), c = g, h = 0.5·tanh(c)
 * assert.ok(Math.abs(h.get(0, 0, 0) - 0.5 * Math.tanh(Math.tanh(0.5))) < 1e-15);
 * assert.deepEqual(h.shape, [1, 1, 1]);
 * ```
 */
export class LSTM extends Recurrent implements Layer, GpuLayer {
  /** Registry name. */
  readonly kind = "LSTM";
  /** Features per input step (I). */
  declare readonly inputSize: number;
  /** Hidden units (H). */
  declare readonly hidden: number;
  /** Whether outputs hold every step (`[batch, T, hidden]`) or the last (`[batch, hidden]`). */
  declare readonly returnSequences: boolean;
  /** `[inputSize, 4·hidden]` */
  declare readonly inputWeights: Param;
  /** `[hidden, 4·hidden]` */
  declare readonly recurrentWeights: Param;
  /** `[4·hidden]` */
  declare readonly inputBiases: Param;
  /** `[4·hidden]` */
  declare readonly recurrentBiases: Param;
  #cache?: LSTMCache; // what the last forward left for backward
  #cells = new Scratch(); // [T, B, H]: c after each step
  #tanhCells = new Scratch(); // [T, B, H]: tanh(c) after each step
  #bias = new Scratch(); // [G]: inputBiases + recurrentBiases
  #dcell = new Scratch(); // [B, H]: d(loss)/d(c) flowing back from the next step
  #gateViews = new StepViews(); // [B, G] per step of the gates
  #dgateViews = new StepViews(); // [B, G] per step of dgates

  /**
   * Creates the layer, drawing the params from U(−1/√hidden, 1/√hidden) unless given.
   *
   * @throws {RangeError} for sizes that are not positive integers; {TypeError} for a bad
   * dtype or `returnSequences`, or given params of the wrong shape.
   */
  constructor(inputSize: number, hidden: number, options: LSTMOptions = {}) {
    super("new LSTM", inputSize, hidden, 4, options);
  }

  /** Rebuilds a layer from {@linkcode LSTM.config} (params are drawn anew). */
  static fromConfig(config: JsonObject): LSTM {
    const { inputSize, hidden, ...options } = config as unknown as
      & { inputSize: number; hidden: number }
      & LSTMOptions;
    return new LSTM(inputSize, hidden, options);
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
    const G = 4 * H;
    const backend = getBackend();
    const bias = this.#bias.get(dtype, [G]).data; // [G]
    const bi = this.inputBiases.value.data, bh = this.recurrentBiases.value.data;
    for (let q = 0; q < G; q++) bias[q] = bi[q] + bh[q];
    this.projectInputs(start, bias);
    // Resident after a training forward, so that the backend may split the cell loops.
    const resident = this.residentBackend();
    const cells = this.#cells.get(dtype, [T, B, H], resident).data; // [T, B, H]
    const tanhCells = this.#tanhCells.get(dtype, [T, B, H], resident).data; // [T, B, H]
    const U = this.recurrentWeights.value.data; // [H, G]
    // The backend's split of the batch rows (the same bits), else this thread's loop.
    const [c, tc, h, u] = [cells, tanhCells, hiddens, U] as Float32Array[];
    const split = gates instanceof Float32Array &&
      backend.lstmForward?.(gates, c, tc, h, u, B, T, H) === true;
    if (!split) this.#recurrence(gates, cells, tanhCells, hiddens, hiddenViews, B, T);
    this.#cache = { ...start, cells, tanhCells };
    return this.finishForward(start);
  }

  // Forward's steps on this thread: gates_t += h_{t−1}·U, then the cells.
  #recurrence(
    gates: FloatArray, // [T, B, G]
    cells: FloatArray, // [T, B, H]
    tanhCells: FloatArray, // [T, B, H]
    hiddens: FloatArray, // [T, B, H]
    hiddenViews: FloatArray[], // T × [B, H]
    B: number,
    T: number,
  ): void {
    const H = this.hidden, G = 4 * H;
    const gateViews = this.#gateViews.of(gates, B * G, T);
    // h·U at every step, U [H, G] packed once
    const recurrent = rightProduct(getBackend(), this.recurrentWeights.value.data, H, G, false);
    for (let t = 0; t < T; t++) {
      // h₀ = 0: the first step has no recurrent term.
      if (t > 0) recurrent(hiddenViews[t - 1], gateViews[t], B, true);
      if (gates instanceof Float32Array) {
        const [c, tc, h] = [cells, tanhCells, hiddens] as Float32Array[];
        lstmForwardRows32(gates, c, tc, h, t, B, H, 0, B);
      } else cellForward(gates, cells, tanhCells, hiddens, t, B, H);
    }
  }

  // dh_{t−1} = dvalues_{t−1} + dgates_t·Uᵀ (then cellBackward)   dW += Xᵀ·dgates
  // dU += H_{t−1}ᵀ·dgates   db_i += Σ dgates   db_h += Σ dgates   dinputs = dgates·Wᵀ
  /**
   * `dvalues` [batch, T, hidden] (or [batch, hidden]) → dinputs [batch, T, inputSize], left
   * uncomputed when `options.inputGradient` is false.
   *
   * @throws {Error} before any forward; {TypeError} when `dvalues` is not shaped like the
   * last forward's outputs.
   */
  backward(dvalues: Tensor, options?: BackwardOptions): Tensor {
    const cache = this.#cache;
    if (!cache) throw new Error("LSTM.backward: call forward first");
    const { dgates, dh } = this.startBackward(dvalues, cache);
    const { batch: B, steps: T, gates, cells, tanhCells } = cache;
    const { dtype, hidden: H } = this;
    const G = 4 * H;
    const dv = dvalues.data; // [B, T, H] or [B, H]
    const U = this.recurrentWeights.value.data; // [H, G]
    const backend = getBackend();
    const [g, c, tc, d, dg, u] = [gates, cells, tanhCells, dv, dgates, U] as Float32Array[];
    // The backend's split of the batch rows (the same bits), else this thread's loop.
    const split = g instanceof Float32Array &&
      backend.lstmBackward?.(g, c, tc, d, this.returnSequences, dg, u, B, T, H) === true;
    if (!split) {
      const dc = this.#dcell.get(dtype, [B, H]).data; // [B, H]
      const dgateViews = this.#dgateViews.of(dgates, B * G, T);
      // dgates·Uᵀ at every step, U [H, G] packed once
      const recurrent = rightProduct(backend, U, G, H, true);
      dc.fill(0);
      for (let t = T - 1; t >= 0; t--) {
        this.addOutputGradient(dv, dh, t, cache);
        lstmBackwardRows(gates, cells, tanhCells, dgates, dh, dc, t, B, H, 0, B);
        // h₀ is a constant: nothing flows back from the first step.
        if (t > 0) recurrent(dgateViews[t], dh, B);
      }
    }
    return this.finishBackward(cache, dgates, dgates, options);
  }

  /**
   * {@linkcode LSTM.forward} on the device: `inputs` [batch, T, inputSize] → outputs
   * [batch, T, hidden] (or [batch, hidden]). Per step, one product (`gates += h·U`) and one
   * cell kernel.
   *
   * @throws {TypeError} for inputs that are not float32 `[batch, T, inputSize]`;
   * {RangeError} for an empty batch or T = 0.
   */
  gpuForward(ctx: GpuContext, inputs: GpuTensor, _options?: GpuForwardOptions): GpuTensor {
    const H = this.hidden, G = 4 * H;
    const bias = ctx.buffer(this, "bias", [G]); // [G]: inputBiases + recurrentBiases
    const bi = ctx.param(this.inputBiases).value, bh = ctx.param(this.recurrentBiases).value;
    gpuMap(ctx, this, "bias", "x0 + x1", [bi, bh], bias, G);
    const cache = this.gpuStartForward(ctx, inputs, bias);
    const { batch: B, steps: T, gates, hiddens, outputs } = cache;
    const U = ctx.param(this.recurrentWeights).value; // [H, G]
    const cells = ctx.buffer(this, "cells", [T, B, H]); // [T, B, H]
    const tanhCells = ctx.buffer(this, "tanh cells", [T, B, H]); // [T, B, H]
    const cell = kernel("LSTM cell", CELL_FORWARD);
    for (let t = 0; t < T; t++) {
      // h₀ = 0: the first step has no recurrent term.
      if (t > 0) {
        gpuMatmul(ctx, this, `recurrent ${t}`, hiddens, U, gates, B, H, G, {
          accumulate: true,
          offsetA: (t - 1) * B * H,
          offsetC: t * B * G,
        });
      }
      const words = cellUniforms(cache, H, t, this.returnSequences);
      const tensors = [gates, cells, tanhCells, hiddens, outputs];
      ctx.run(this, `cell ${t}`, cell, tensors, words, gridFor(B * H));
    }
    return outputs;
  }

  // dh_{t−1} = dvalues_{t−1} + dgates_t·Uᵀ (then the cell kernel)   dW += Xᵀ·dgates
  // dU += H_{t−1}ᵀ·dgates   db_i += Σ dgates   db_h += Σ dgates   dinputs = dgates·Wᵀ
  /**
   * {@linkcode LSTM.backward} on the device: `dvalues` [batch, T, hidden] (or [batch,
   * hidden]) → dinputs [batch, T, inputSize], left uncomputed when `options.inputGradient`
   * is false. Per step, one cell kernel and one product (`dh = dgates·Uᵀ`); the gradients
   * one product or column sum each over all steps.
   *
   * @throws {Error} before any gpuForward; {TypeError} when `dvalues` is not shaped like the
   * last gpuForward's outputs.
   */
  gpuBackward(ctx: GpuContext, dvalues: GpuTensor, options?: GpuBackwardOptions): GpuTensor {
    const start = this.gpuStartBackward(ctx, dvalues);
    const { batch: B, steps: T, gates, dgates, dh } = start;
    const H = this.hidden, G = 4 * H;
    const U = ctx.param(this.recurrentWeights).value; // [H, G]
    const cells = ctx.buffer(this, "cells", [T, B, H]); // [T, B, H]
    const tanhCells = ctx.buffer(this, "tanh cells", [T, B, H]); // [T, B, H]
    const dc = ctx.buffer(this, "dc", [B, H]); // [B, H]: d(loss)/d(c) from the next step
    const cell = kernel("LSTM cell backward", CELL_BACKWARD);
    for (let t = T - 1; t >= 0; t--) {
      const words = cellUniforms(start, H, t, this.returnSequences);
      const tensors = [gates, cells, tanhCells, dvalues, dgates, dh, dc];
      ctx.run(this, `cell backward ${t}`, cell, tensors, words, gridFor(B * H));
      // h₀ is a constant: nothing flows back from the first step.
      if (t > 0) {
        gpuMatmul(ctx, this, `dh ${t}`, dgates, U, dh, B, G, H, {
          transB: true,
          offsetA: t * B * G,
        });
      }
    }
    return this.gpuFinishBackward(ctx, start, dgates, dgates, options);
  }

  /** `[inputWeights, recurrentWeights, inputBiases, recurrentBiases]` */
  params(): Param[] {
    return [this.inputWeights, this.recurrentWeights, this.inputBiases, this.recurrentBiases];
  }

  /**
   * PyTorch's `nn.LSTM` names: `weight_ih_l0` and `weight_hh_l0` (transposed, `[4·hidden,
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

  /** `LSTM(inputSize=64, hidden=256)`, with `returnSequences=false` when set. */
  override toString(): string {
    const last = this.returnSequences ? "" : ", returnSequences=false";
    return `LSTM(inputSize=${this.inputSize}, hidden=${this.hidden}${last})`;
  }
}

// Step t's gates and cell, every sample: the pre-activations in `gates` become i, f, g, o in
// place; c, tanh(c) and h are written at step t of their buffers.
function cellForward(
  gates: FloatArray, // [T, B, G]
  cells: FloatArray, // [T, B, H]
  tanhCells: FloatArray, // [T, B, H]
  hiddens: FloatArray, // [T, B, H]
  t: number,
  B: number,
  H: number,
): void {
  const G = 4 * H, BH = B * H;
  for (let b = 0; b < B; b++) {
    const row = (t * B + b) * G, at = t * BH + b * H, prev = at - BH;
    for (let q = row; q < row + 2 * H; q++) gates[q] = sigmoid(gates[q]); // i, f
    for (let q = row + 2 * H; q < row + 3 * H; q++) gates[q] = tanh(gates[q]); // g
    for (let q = row + 3 * H; q < row + G; q++) gates[q] = sigmoid(gates[q]); // o
    for (let j = 0; j < H; j++) {
      const cPrev = t > 0 ? cells[prev + j] : 0; // c₀ = 0
      const c = gates[row + H + j] * cPrev + gates[row + j] * gates[row + 2 * H + j];
      const tc = tanh(c);
      cells[at + j] = c;
      tanhCells[at + j] = tc;
      hiddens[at + j] = gates[row + 3 * H + j] * tc;
    }
  }
}

// ---- The GPU side ------------------------------------------------------------------------

// Step t's gates and cell on the device, as cellForward: one invocation per (b, j) turns
// its four pre-activations into i, f, g, o in place and writes c, tanh(c) and h at step t,
// and h into the outputs (at [b, t, j], or at [b, j] on the last step).
const CELL_FORWARD = /* wgsl */ `
${CELL_UNIFORMS}
@group(0) @binding(1) var<storage, read_write> gates: array<f32>; // [T, B, G]
@group(0) @binding(2) var<storage, read_write> cells: array<f32>; // [T, B, H]
@group(0) @binding(3) var<storage, read_write> tanhCells: array<f32>; // [T, B, H]
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
  let row = (p.t * p.batch + b) * 4u * H;
  let at = p.t * BH + i;
  let ig = logistic(gates[row + j]);
  let f = logistic(gates[row + H + j]);
  let g = tanhAccurate(gates[row + 2u * H + j]);
  let o = logistic(gates[row + 3u * H + j]);
  gates[row + j] = ig;
  gates[row + H + j] = f;
  gates[row + 2u * H + j] = g;
  gates[row + 3u * H + j] = o;
  var cPrev = 0.0; // c₀ = 0
  if (p.t > 0u) { cPrev = cells[at - BH]; }
  let c = f * cPrev + ig * g;
  let tc = tanhAccurate(c);
  let h = o * tc;
  cells[at] = c;
  tanhCells[at] = tc;
  hiddens[at] = h;
  if (p.sequences != 0u) {
    outputs[(b * p.steps + p.t) * H + j] = h;
  } else if (p.t + 1u == p.steps) {
    outputs[i] = h;
  }
}`;

// Step t's gate gradients on the device, as cellBackward, with dh = d(loss)/d(h_t) made here:
// dvalues' step t (every step's outputs) or all of dvalues (the last step's), plus, below
// the last step, what the product of step t + 1 left in dh; dc likewise starts at 0.
// dc += dh⊙o⊙(1−tanh²c)  dpre_i = dc⊙g⊙i(1−i)  dpre_f = dc⊙c_{t−1}⊙f(1−f)  dpre_g = dc⊙i⊙(1−g²)  dpre_o = dh⊙tanh(c)⊙o(1−o)  dc_{t−1} = dc⊙f
const CELL_BACKWARD = /* wgsl */ `
${CELL_UNIFORMS}
@group(0) @binding(1) var<storage, read> gates: array<f32>; // [T, B, G]: i, f, g, o
@group(0) @binding(2) var<storage, read> cells: array<f32>; // [T, B, H]
@group(0) @binding(3) var<storage, read> tanhCells: array<f32>; // [T, B, H]
@group(0) @binding(4) var<storage, read> dvalues: array<f32>; // [B, T, H] or [B, H]
@group(0) @binding(5) var<storage, read_write> dgates: array<f32>; // [T, B, G]
@group(0) @binding(6) var<storage, read_write> dh: array<f32>; // [B, H]
@group(0) @binding(7) var<storage, read_write> dc: array<f32>; // [B, H]
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
  var dcNext = 0.0;
  if (!last) {
    dhj = dh[i];
    dcNext = dc[i];
  }
  if (p.sequences != 0u) {
    dhj += dvalues[(b * p.steps + p.t) * H + j];
  } else if (last) {
    dhj = dvalues[i];
  }
  let row = (p.t * p.batch + b) * 4u * H;
  let at = p.t * BH + i;
  let ig = gates[row + j];
  let f = gates[row + H + j];
  let g = gates[row + 2u * H + j];
  let o = gates[row + 3u * H + j];
  let tc = tanhCells[at];
  var cPrev = 0.0;
  if (p.t > 0u) { cPrev = cells[at - BH]; }
  let dcj = dcNext + dhj * o * (1.0 - tc * tc);
  dgates[row + j] = dcj * g * ig * (1.0 - ig);
  dgates[row + H + j] = dcj * cPrev * f * (1.0 - f);
  dgates[row + 2u * H + j] = dcj * ig * (1.0 - g * g);
  dgates[row + 3u * H + j] = dhj * tc * o * (1.0 - o);
  dc[i] = dcj * f;
}`;
