// What LSTM and GRU share: their base class `Recurrent` (the four params, the buffers both
// use, the parts of forward and backward around their cell loops), the checks of their
// inputs, the transposes between batch-major and time-major sequences, cached per-step
// views, and (from core/_fast_math.ts) a sigmoid and a tanh accurate to a few float64 ulps
// that are faster than Math.exp/Math.tanh in the gate loops. Below the CPU parts, their GPU
// counterparts: the transposes as a kernel, the gate functions in WGSL, and the parts of
// gpuForward and gpuBackward around the per-step kernels. Private to the layers.
//
// Dimension letters: B batch, T time steps, I input features, H hidden units, G gate
// columns (4·H for the LSTM, 3·H for the GRU), so a row of gates holds G pre-activations.
import { getBackend } from "../backends/selection.ts";
import { describe, describeKind } from "../core/_describe.ts";
import type { Backend, RightProduct } from "../core/backend.ts";
import { checkAllocation } from "../core/_allocation.ts";
import type { BackwardOptions, ForwardOptions } from "../core/layer.ts";
import { Param } from "../core/param.ts";
import { type RandomOptions, resolveRandom } from "../core/random.ts";
import { Scratch } from "../core/_scratch.ts";
import {
  copyRowsByGroup,
  markGroupSums,
  type RowGroups,
  rowGroupsOf,
  sameRows,
  sumRowsByGroup,
} from "../core/row_groups.ts";
import {
  type DType,
  type FloatArray,
  formatShape,
  type NestedArray,
  Tensor,
} from "../core/tensor.ts";
import { fillExplicit } from "./_weights.ts";
import {
  flatIndex,
  type GpuBackwardOptions,
  type GpuContext,
  type GpuTensor,
  gridFor,
} from "../core/gpu.ts";
import { gpuMatmul, gpuSumColumns, kernel } from "../backends/webgpu_ops.ts";

export { exp, sigmoid, sigmoid32, tanh, tanh32 } from "../core/_fast_math.ts";

/** The constructor options LSTM and GRU share (their public option types extend this shape). */
export interface RecurrentInit extends RandomOptions {
  returnSequences?: boolean;
  dtype?: DType;
  inputWeights?: NestedArray;
  recurrentWeights?: NestedArray;
  inputBiases?: NestedArray;
  recurrentBiases?: NestedArray;
}

/** The four params of a one-layer recurrent net, in PyTorch's order. */
export interface RecurrentParams {
  /** `[I, G]` (the transpose of `weight_ih_l0`) */
  inputWeights: Param;
  /** `[H, G]` (the transpose of `weight_hh_l0`) */
  recurrentWeights: Param;
  /** `[G]` (`bias_ih_l0`) */
  inputBiases: Param;
  /** `[G]` (`bias_hh_l0`) */
  recurrentBiases: Param;
}

/** PyTorch's names of the four params (`nn.LSTM`, `nn.GRU`: one layer). */
export const RECURRENT_TORCH_NAMES = {
  inputWeights: { torch: "weight_ih_l0", transpose: true },
  recurrentWeights: { torch: "weight_hh_l0", transpose: true },
  inputBiases: { torch: "bias_ih_l0" },
  recurrentBiases: { torch: "bias_hh_l0" },
} as const;

/**
 * Checks the constructor arguments and creates the four params: the given values, else
 * U(−1/√H, 1/√H) drawn in the order inputWeights, recurrentWeights, inputBiases,
 * recurrentBiases (each row-major), as PyTorch initializes all four.
 *
 * @throws {RangeError} for sizes that are not positive integers; {TypeError} for a bad
 * dtype, a non-boolean `returnSequences` or given values of the wrong shape.
 */
export function createRecurrentParams(
  where: string,
  inputSize: number,
  hidden: number,
  gates: number,
  options: RecurrentInit,
): RecurrentParams {
  for (const [name, value] of [["inputSize", inputSize], ["hidden", hidden]] as const) {
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new RangeError(`${where}: ${name} must be a positive integer, got ${describe(value)}`);
    }
  }
  const dtype = options.dtype ?? "float32";
  if (dtype !== "float32" && dtype !== "float64") {
    throw new TypeError(`${where}: dtype must be "float32" or "float64", got ${describe(dtype)}`);
  }
  const sequences = options.returnSequences;
  if (sequences !== undefined && typeof sequences !== "boolean") {
    throw new TypeError(`${where}: returnSequences must be a boolean, got ${describe(sequences)}`);
  }
  const width = gates * hidden;
  const shapes = {
    inputWeights: [inputSize, width],
    recurrentWeights: [hidden, width],
    inputBiases: [width],
    recurrentBiases: [width],
  } as const;
  checkAllocation(where, dtype, shapes);
  const limit = 1 / Math.sqrt(hidden);
  let random: ReturnType<typeof resolveRandom> | undefined;
  const params = {} as RecurrentParams;
  for (const name of Object.keys(shapes) as (keyof RecurrentParams)[]) {
    const param = new Param(name, Tensor.zeros(shapes[name], { dtype }));
    const given = options[name];
    if (given !== undefined) {
      fillExplicit(param.value, given, name, where);
    } else {
      random ??= resolveRandom(options);
      const data = param.value.data;
      for (let i = 0; i < data.length; i++) data[i] = (2 * random.random() - 1) * limit;
    }
    params[name] = param;
  }
  return params;
}

/**
 * Checks that `inputs` is a `[batch, T, inputSize]` tensor of `dtype` with a non-empty batch
 * and at least one step, and returns `[batch, T]`.
 *
 * @throws {TypeError} for a wrong kind, rank, feature count or dtype; {RangeError} for an
 * empty batch or T = 0.
 */
export function expectSequence(
  inputs: Tensor,
  where: string,
  inputSize: number,
  dtype: DType,
): [number, number] {
  if (!(inputs instanceof Tensor)) {
    throw new TypeError(`${where}: inputs must be a Tensor, got ${describeKind(inputs)}`);
  }
  const shape = formatShape(inputs.shape);
  if (inputs.rank !== 3) {
    throw new TypeError(
      `${where}: inputs must be 3-D [batch, T, inputSize], got shape ${shape}`,
    );
  }
  const [batch, steps, features] = inputs.shape;
  if (features !== inputSize) {
    throw new TypeError(
      `${where}: inputs have ${features} features per step, expected ${inputSize} (inputs shape ${shape})`,
    );
  }
  if (batch === 0) throw new RangeError(`${where}: inputs are an empty batch (shape ${shape})`);
  if (steps === 0) {
    throw new RangeError(`${where}: inputs have no time steps (T = 0, shape ${shape})`);
  }
  if (inputs.dtype !== dtype) {
    throw new TypeError(
      `${where}: inputs are ${inputs.dtype}, the layer is ${dtype} (convert with tensor.clone({ dtype: "${dtype}" }))`,
    );
  }
  return [batch, steps];
}

/**
 * Checks that `dvalues` is a tensor of `dtype` and `shape` (the last forward's outputs).
 *
 * @throws {TypeError} naming `where` when it is not.
 */
export function expectDvalues(
  dvalues: Tensor,
  where: string,
  dtype: DType,
  shape: readonly number[],
): void {
  const same = dvalues instanceof Tensor && dvalues.dtype === dtype &&
    dvalues.rank === shape.length && dvalues.shape.every((d, i) => d === shape[i]);
  if (!same) {
    const got = dvalues instanceof Tensor
      ? `${dvalues.dtype} ${formatShape(dvalues.shape)}`
      : describeKind(dvalues);
    throw new TypeError(
      `${where}: dvalues is ${got}, expected ${dtype} ${
        formatShape(shape)
      } like the last forward's outputs`,
    );
  }
}

/** to[t, b, :] = from[b, t, :] over `width` features: `[B, T, F]` → `[T, B, F]`. */
export function toTimeMajor(
  from: FloatArray,
  to: FloatArray,
  batch: number,
  steps: number,
  width: number,
): void {
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < steps; t++) {
      const src = (b * steps + t) * width, dst = (t * batch + b) * width;
      for (let f = 0; f < width; f++) to[dst + f] = from[src + f];
    }
  }
}

/** to[b, t, :] = from[t, b, :] over `width` features: `[T, B, F]` → `[B, T, F]`. */
export function toBatchMajor(
  from: FloatArray,
  to: FloatArray,
  batch: number,
  steps: number,
  width: number,
): void {
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < steps; t++) {
      const src = (t * batch + b) * width, dst = (b * steps + t) * width;
      for (let f = 0; f < width; f++) to[dst + f] = from[src + f];
    }
  }
}

/**
 * c[m, n] = a[m, k]·w[k, n] + bias[n] on every row, through the backend's fused product when
 * it has one.
 */
export function affine(
  backend: Backend,
  a: FloatArray,
  w: FloatArray,
  bias: FloatArray,
  c: FloatArray,
  m: number,
  k: number,
  n: number,
): void {
  if (backend.matmulBias) backend.matmulBias(a, w, bias, c, m, k, n);
  else {
    backend.matmul(a, w, c, m, k, n);
    backend.addBias(c, bias, m, n);
  }
}

/**
 * The products by one fixed right operand, c[m, n] (=|+=) a[m, k]·b (b [k, n], or b [n, k]
 * transposed): the backend's `prepareRight`, which packs b once for all T steps, else
 * `matmul` or `matmulTransB` per call.
 */
export function rightProduct(
  backend: Backend,
  b: FloatArray,
  k: number,
  n: number,
  transposed: boolean,
): RightProduct {
  if (backend.prepareRight) return backend.prepareRight(b, k, n, transposed);
  return transposed
    ? (a, c, m, accumulate) => backend.matmulTransB(a, b, c, m, n, k, accumulate)
    : (a, c, m, accumulate) => backend.matmul(a, b, c, m, k, n, accumulate);
}

/**
 * The per-step slices of a time-major buffer, `[T, B, F]` cut into T views of `[B, F]`,
 * made once per buffer: a training step's loops then allocate no view objects.
 */
export class StepViews {
  #source?: FloatArray;
  #views: FloatArray[] = [];

  /** The `steps` consecutive views of `size` elements each of `data`. */
  of(data: FloatArray, size: number, steps: number): FloatArray[] {
    const views = this.#views;
    if (this.#source !== data || views.length !== steps || views[0]?.length !== size) {
      this.#source = data;
      this.#views = Array.from(
        { length: steps },
        (_, t) => data.subarray(t * size, (t + 1) * size),
      );
    }
    return this.#views;
  }
}

/** What every forward leaves for backward: views of the base's buffers, all time-major. */
export interface SequenceCache {
  /** B */
  batch: number;
  /** T */
  steps: number;
  /** `[T, B, I]`: the inputs */
  x: FloatArray;
  /** `[T, B, G]`: the gates (pre-activations until the cell loop) */
  gates: FloatArray;
  /** `[T, B, H]`: h after each step */
  hiddens: FloatArray;
  /** `[B, H]` per step of `hiddens` */
  hiddenViews: FloatArray[];
  /** The inputs' groups of equal rows when the products use them (see `RowGroups`) */
  grouped?: InputGroups;
}

/** Inputs whose rows repeat (an Embedding's): the products take one row per group. */
export interface InputGroups {
  /** The inputs' tag, which d(inputs) as group sums is tagged with */
  source: RowGroups;
  /** Groups */
  count: number;
  /** `[T·B]`: the group of each time-major row */
  groupOfRow: Int32Array;
  /** `[count, I]`: one row of each group */
  rows: FloatArray;
}

/** The buffers every backward starts from. */
export interface SequenceGradients {
  /** `[T, B, G]`: d(loss)/d(gate pre-activations), written by the cell loop */
  dgates: FloatArray;
  /** `[B, H]`: d(loss)/d(h) flowing back from the next step, zeroed */
  dh: FloatArray;
}

/** What every gpuForward leaves for gpuBackward: buffers of the layer's, all time-major. */
export interface GpuSequenceCache {
  /** B */
  batch: number;
  /** T */
  steps: number;
  /** `[T, B, I]`: the inputs */
  x: GpuTensor;
  /** `[T, B, G]`: the gates (pre-activations until each step's cell kernel) */
  gates: GpuTensor;
  /** `[T, B, H]`: h after each step */
  hiddens: GpuTensor;
  /** `[B, T, H]` or `[B, H]`: the outputs, written by the cell kernels */
  outputs: GpuTensor;
}

/** The buffers every gpuBackward starts from. */
export interface GpuSequenceGradients {
  /** `[T, B, G]`: d(loss)/d(gate pre-activations), written by the cell kernels */
  dgates: GpuTensor;
  /** `[B, H]`: d(loss)/d(h) flowing back from the next step (read from step T − 2 down) */
  dh: GpuTensor;
}

/**
 * What LSTM and GRU share: the four params and sizes, the buffers both use, and the parts
 * of forward and backward around their cell loops. The subclasses redeclare their public
 * fields (`declare`) and keep their public methods, so that their own docs list them all
 * (deno doc does not show inherited members). Not exported by mod.ts, hence `@ignore`, which
 * keeps `deno doc --lint` from asking for it to be public.
 *
 * @ignore
 */
export abstract class Recurrent {
  /** Registry name, which also prefixes error messages (`LSTM.forward: …`). */
  abstract readonly kind: string;
  /** Features per input step (I). */
  readonly inputSize: number;
  /** Hidden units (H). */
  readonly hidden: number;
  /** Whether outputs hold every step (`[batch, T, hidden]`) or the last (`[batch, hidden]`). */
  readonly returnSequences: boolean;
  /** `[inputSize, G]` */
  readonly inputWeights: Param;
  /** `[hidden, G]` */
  readonly recurrentWeights: Param;
  /** `[G]` */
  readonly inputBiases: Param;
  /** `[G]` */
  readonly recurrentBiases: Param;
  /** Gates per hidden unit (4 or 3): G = gateCount·H. */
  protected readonly gateCount: number;
  #training = false; // whether the last forward was a training one
  #inputs = new Scratch(); // [T, B, I]: the inputs, time-major
  #gates = new Scratch(); // [T, B, G]
  #hiddens = new Scratch(); // [T, B, H]: h after each step
  #outputs = new Scratch(); // [B, T, H] or [B, H], reused by training forwards
  #dgates = new Scratch(); // [T, B, G]
  #dhidden = new Scratch(); // [B, H]: d(loss)/d(h) flowing back from the next step
  #dbias = new Scratch(); // [G]: a column sum of the gate gradients
  #dinputsTime = new Scratch(); // [T, B, I]
  #dinputs = new Scratch(); // [B, T, I], reused by backward after a training forward
  #hiddenViews = new StepViews(); // [B, H] per step of #hiddens
  #groupOfRow = new Int32Array(0); // [T·B]: the group of each time-major input row
  #groupRows = new Scratch(); // [count, I]: one input row of each group
  #groupGates = new Scratch(); // [count, G]: x·W + b of each group
  #groupGateViews = new StepViews(); // [G] per group of #groupGates
  #dgroupGates = new Scratch(); // [count, G]: the gate gradients summed by group
  #dgroupInputs = new Scratch(); // [count, I]: d(inputs) summed by group
  #gpuCache?: GpuSequenceCache; // what the last gpuForward left for gpuBackward

  /** Checks the arguments (errors start with `where`) and creates the params. */
  protected constructor(
    where: string,
    inputSize: number,
    hidden: number,
    gates: number,
    options: RecurrentInit,
  ) {
    const params = createRecurrentParams(where, inputSize, hidden, gates, options);
    this.inputSize = inputSize;
    this.hidden = hidden;
    this.returnSequences = options.returnSequences ?? true;
    this.inputWeights = params.inputWeights;
    this.recurrentWeights = params.recurrentWeights;
    this.inputBiases = params.inputBiases;
    this.recurrentBiases = params.recurrentBiases;
    this.gateCount = gates;
  }

  /** Element type of the parameters. */
  abstract get dtype(): DType;

  /**
   * A forward's start: checks `inputs` [B, T, I], notes whether it trains, copies the inputs
   * time-major and hands out the gate and hidden buffers, uninitialized.
   *
   * @throws {TypeError} for inputs that are not 3-D, have the wrong feature count or dtype;
   * {RangeError} for an empty batch or T = 0.
   */
  protected startForward(inputs: Tensor, options: ForwardOptions | undefined): SequenceCache {
    const { dtype, inputSize: I, hidden: H } = this;
    const [B, T] = expectSequence(inputs, `${this.kind}.forward`, I, dtype);
    const G = this.gateCount * H;
    this.#training = options?.training === true;
    // A training forward's buffers resident where the backend places them (the products use
    // them in place); inference's stay ordinary (resident blocks are never freed).
    const backend = this.#training ? getBackend() : undefined;
    const x = this.#inputs.get(dtype, [T, B, I], backend).data; // [T, B, I]
    toTimeMajor(inputs.data, x, B, T, I);
    const gates = this.#gates.get(dtype, [T, B, G], backend).data; // [T, B, G]
    const hiddens = this.#hiddens.get(dtype, [T, B, H], backend).data; // [T, B, H]
    const hiddenViews = this.#hiddenViews.of(hiddens, B * H, T);
    const grouped = this.#inputGroups(inputs, B, T);
    return { batch: B, steps: T, x, gates, hiddens, hiddenViews, grouped };
  }

  // The inputs' row groups when they pay: at most half as many groups as rows, and the tag
  // checked against the data (it may have been changed in place since).
  #inputGroups(inputs: Tensor, B: number, T: number): InputGroups | undefined {
    const source = rowGroupsOf(inputs), I = this.inputSize;
    if (!source || source.rows !== B * T || 2 * source.count > B * T) return undefined;
    if (!sameRows(inputs.data, I, source)) return undefined;
    const { count, group, first } = source;
    const rows = this.#groupRows.get(this.dtype, [count, I]).data; // [count, I]
    const x = inputs.data; // [B, T, I]
    for (let g = 0; g < count; g++) {
      const from = first[g] * I, to = g * I;
      for (let j = 0; j < I; j++) rows[to + j] = x[from + j];
    }
    if (this.#groupOfRow.length !== B * T) this.#groupOfRow = new Int32Array(B * T);
    const groupOfRow = this.#groupOfRow; // [T·B]
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) groupOfRow[t * B + b] = group[b * T + t];
    }
    return { source, count, groupOfRow, rows };
  }

  /**
   * gates = x·W + `bias` for every step: one product over all T·B rows, or over one row per
   * group of equal inputs and a copy of each group's result to its rows (the same bits).
   */
  protected projectInputs(cache: SequenceCache, bias: FloatArray): void {
    const { inputSize: I, hidden: H } = this;
    const { batch: B, steps: T, x, gates, grouped } = cache;
    const G = this.gateCount * H, w = this.inputWeights.value.data; // [I, G]
    const backend = getBackend();
    if (!grouped) return affine(backend, x, w, bias, gates, T * B, I, G);
    const groupGates = this.#groupGates.get(this.dtype, [grouped.count, G]).data; // [count, G]
    affine(backend, grouped.rows, w, bias, groupGates, grouped.count, I, G);
    copyRowsByGroup(
      this.#groupGateViews.of(groupGates, G, grouped.count),
      gates,
      grouped.groupOfRow,
    );
  }

  /**
   * The backend to place a buffer of a training pass with (see `Scratch.get`), so that its
   * products use it in place; undefined after an inference forward.
   */
  protected residentBackend(): Backend | undefined {
    return this.#training ? getBackend() : undefined;
  }

  /**
   * A forward's outputs from its hiddens: `[B, T, H]` (batch-major) or the last step's
   * `[B, H]`, in the reused buffer after a training forward.
   */
  protected finishForward(cache: SequenceCache): Tensor {
    const { dtype, hidden: H } = this;
    const { batch: B, steps: T } = cache;
    const shape = this.returnSequences ? [B, T, H] : [B, H];
    const outputs = this.#training // [B, T, H] or [B, H]
      ? this.#outputs.get(dtype, shape, this.residentBackend())
      : Tensor.zeros(shape, { dtype });
    if (this.returnSequences) toBatchMajor(cache.hiddens, outputs.data, B, T, H);
    else outputs.data.set(cache.hiddenViews[T - 1]);
    return outputs;
  }

  /**
   * A backward's start: checks that `dvalues` is shaped like the outputs of the forward that
   * left `cache`, and hands out the gate gradients (uninitialized) and dh (zeroed).
   *
   * @throws {TypeError} when `dvalues` is not shaped like the last forward's outputs.
   */
  protected startBackward(dvalues: Tensor, cache: SequenceCache): SequenceGradients {
    const { dtype, hidden: H } = this;
    const { batch: B, steps: T } = cache;
    const shape = this.returnSequences ? [B, T, H] : [B, H];
    expectDvalues(dvalues, `${this.kind}.backward`, dtype, shape);
    const dgates = this.#dgates.get(dtype, [T, B, this.gateCount * H], this.residentBackend()).data; // [T, B, G]
    const dh = this.#dhidden.get(dtype, [B, H]).data; // [B, H]
    dh.fill(0);
    return { dgates, dh };
  }

  // dh += dvalues_t (every step's outputs), or dh = dvalues at the last step (the last one's)
  /** Adds what `dv` (`dvalues`' data, [B, T, H] or [B, H]) holds for step t to dh [B, H]. */
  protected addOutputGradient(
    dv: FloatArray,
    dh: FloatArray,
    t: number,
    cache: SequenceCache,
  ): void {
    const { batch: B, steps: T } = cache;
    const H = this.hidden;
    if (this.returnSequences) {
      for (let b = 0; b < B; b++) {
        const from = (b * T + t) * H, to = b * H;
        for (let j = 0; j < H; j++) dh[to + j] += dv[from + j];
      }
    } else if (t === T - 1) dh.set(dv);
  }

  // dW += Xᵀ·dgates   dU += H_{t−1}ᵀ·drec   db_i += Σ dgates   db_h += Σ drec   dinputs = dgates·Wᵀ
  // With groups of equal input rows, S = dgates summed by group: dW += X_groupsᵀ·S,
  // db_i += Σ S, and the group sums of dinputs are S·Wᵀ.
  /**
   * A backward's end, after the steps: the params' gradients from `dgates` (d(loss)/d(x·W +
   * b_i)) and `drecurrent` (d(loss)/d(h_{t−1}·U + b_h), the same buffer for the LSTM), and
   * dinputs [B, T, I], left uncomputed when `options.inputGradient` is false, or its sums
   * over the inputs' row groups `[count, I]` when `options.groupSums` allows them.
   */
  protected finishBackward(
    cache: SequenceCache,
    dgates: FloatArray,
    drecurrent: FloatArray,
    options: BackwardOptions | undefined,
  ): Tensor {
    const { dtype, inputSize: I, hidden: H } = this;
    const { batch: B, steps: T, x, hiddens } = cache;
    const G = this.gateCount * H;
    const backend = getBackend();
    const grouped = cache.grouped;
    // S [count, G], or dgates itself: what the input weights' gradients are summed from
    const dinputGates = grouped ? this.#dgroupGates.get(dtype, [grouped.count, G]).data : dgates;
    const inputRows = grouped ? grouped.count : T * B;
    if (grouped) {
      const { groupOfRow, count } = grouped;
      if (backend.sumRowsByGroup) backend.sumRowsByGroup(dgates, dinputGates, G, groupOfRow, count);
      else sumRowsByGroup(dgates, dinputGates, G, groupOfRow, count);
    }
    const dw = this.inputWeights.grad.data;
    backend.matmulTransA(grouped ? grouped.rows : x, dinputGates, dw, inputRows, I, G, true);
    if (T > 1) {
      // Rows t ≥ 1 only: the first step's recurrent input h₀ is zero.
      const previous = hiddens.subarray(0, (T - 1) * B * H);
      const later = drecurrent.subarray(B * G);
      backend.matmulTransA(
        previous,
        later,
        this.recurrentWeights.grad.data,
        (T - 1) * B,
        H,
        G,
        true,
      );
    }
    const dbias = this.#dbias.get(dtype, [G]).data; // [G]
    backend.sumColumns(dinputGates, dbias, inputRows, G);
    const dbi = this.inputBiases.grad.data;
    for (let q = 0; q < G; q++) dbi[q] += dbias[q];
    if (drecurrent !== dgates) backend.sumColumns(drecurrent, dbias, T * B, G);
    const dbh = this.recurrentBiases.grad.data;
    for (let q = 0; q < G; q++) dbh[q] += dbias[q];
    if (grouped && options?.groupSums === true && options.inputGradient !== false) {
      const sums = this.#dgroupInputs.get(dtype, [grouped.count, I]); // [count, I]
      backend.matmulTransB(dinputGates, this.inputWeights.value.data, sums.data, inputRows, I, G);
      markGroupSums(sums, grouped.source);
      return sums;
    }
    const shape = [B, T, I];
    const dinputs = this.#training // [B, T, I]
      ? this.#dinputs.get(
        dtype,
        shape,
        options?.inputGradient === false ? undefined : this.residentBackend(),
      )
      : Tensor.zeros(shape, { dtype });
    if (options?.inputGradient === false) return dinputs;
    const dx = this.#dinputsTime.get(dtype, [T, B, I], this.residentBackend()).data; // [T, B, I]
    backend.matmulTransB(dgates, this.inputWeights.value.data, dx, T * B, I, G);
    toBatchMajor(dx, dinputs.data, B, T, I);
    return dinputs;
  }

  /**
   * A gpuForward's start: checks `inputs` [B, T, I], copies them time-major and hands out
   * the gate, hidden and output buffers; `gates` = x·W + `bias` (`[G]`) for every step, one
   * product over all T·B rows.
   *
   * @throws {TypeError} for inputs that are not float32 `[batch, T, inputSize]`;
   * {RangeError} for an empty batch or T = 0.
   */
  protected gpuStartForward(
    ctx: GpuContext,
    inputs: GpuTensor,
    bias: GpuTensor,
  ): GpuSequenceCache {
    const { inputSize: I, hidden: H } = this;
    const [B, T] = expectGpuSequence(inputs, `${this.kind}.gpuForward`, I);
    const G = this.gateCount * H;
    const x = ctx.buffer(this, "inputs", [T, B, I]); // [T, B, I]
    gpuSwapLeading(ctx, this, "inputs time-major", inputs, x, B, T, I);
    const gates = ctx.buffer(this, "gates", [T, B, G]); // [T, B, G]
    const weights = ctx.param(this.inputWeights).value; // [I, G]
    gpuMatmul(ctx, this, "input projection", x, weights, gates, T * B, I, G, { bias });
    const hiddens = ctx.buffer(this, "hiddens", [T, B, H]); // [T, B, H]
    const shape = this.returnSequences ? [B, T, H] : [B, H];
    const outputs = ctx.buffer(this, "outputs", shape); // [B, T, H] or [B, H]
    this.#gpuCache = { batch: B, steps: T, x, gates, hiddens, outputs };
    return this.#gpuCache;
  }

  /**
   * A gpuBackward's start: the last gpuForward's buffers, after checking that `dvalues` is
   * shaped like its outputs, and the gate gradients and dh (neither initialized: the cell
   * kernel of step T − 1 reads no dh).
   *
   * @throws {Error} before any gpuForward; {TypeError} when `dvalues` is not shaped like
   * the last gpuForward's outputs.
   */
  protected gpuStartBackward(
    ctx: GpuContext,
    dvalues: GpuTensor,
  ): GpuSequenceCache & GpuSequenceGradients {
    const cache = this.#gpuCache;
    if (!cache) throw new Error(`${this.kind}.gpuBackward: call gpuForward first`);
    const { batch: B, steps: T, outputs } = cache;
    const H = this.hidden;
    const same = dvalues.size === outputs.size &&
      dvalues.shape.length === outputs.shape.length &&
      dvalues.shape.every((d, i) => d === outputs.shape[i]);
    if (!same || dvalues.dtype !== "float32") {
      throw new TypeError(
        `${this.kind}.gpuBackward: dvalues is ${dvalues.dtype} ${formatShape(dvalues.shape)}, ` +
          `expected float32 ${formatShape(outputs.shape)} like the last gpuForward's outputs`,
      );
    }
    const dgates = ctx.buffer(this, "dgates", [T, B, this.gateCount * H]); // [T, B, G]
    const dh = ctx.buffer(this, "dh", [B, H]); // [B, H]
    return { ...cache, dgates, dh };
  }

  // dW += Xᵀ·dgates   dU += H_{t−1}ᵀ·drec   db_i += Σ dgates   db_h += Σ drec   dinputs = dgates·Wᵀ
  /**
   * A gpuBackward's end, after the steps: as {@linkcode Recurrent.finishBackward}, each
   * gradient one product (or column sum) over all steps.
   */
  protected gpuFinishBackward(
    ctx: GpuContext,
    cache: GpuSequenceCache,
    dgates: GpuTensor,
    drecurrent: GpuTensor,
    options: GpuBackwardOptions | undefined,
  ): GpuTensor {
    const { inputSize: I, hidden: H } = this;
    const { batch: B, steps: T, x, hiddens } = cache;
    const G = this.gateCount * H;
    const W = ctx.param(this.inputWeights), U = ctx.param(this.recurrentWeights);
    gpuMatmul(ctx, this, "dW", x, dgates, W.grad, I, T * B, G, {
      transA: true,
      accumulate: true,
    });
    if (T > 1) {
      // Rows t ≥ 1 of drecurrent only: the first step's recurrent input h₀ is zero.
      gpuMatmul(ctx, this, "dU", hiddens, drecurrent, U.grad, H, (T - 1) * B, G, {
        transA: true,
        accumulate: true,
        offsetB: B * G,
      });
    }
    const dbi = ctx.param(this.inputBiases).grad, dbh = ctx.param(this.recurrentBiases).grad;
    gpuSumColumns(ctx, this, "dbi", dgates, dbi, T * B, G, true);
    gpuSumColumns(ctx, this, "dbh", drecurrent, dbh, T * B, G, true);
    const dinputs = ctx.buffer(this, "dinputs", [B, T, I]); // [B, T, I]
    if (options?.inputGradient === false) return dinputs;
    const dx = ctx.buffer(this, "dinputs time-major", [T, B, I]); // [T, B, I]
    gpuMatmul(ctx, this, "dinputs", dgates, W.value, dx, T * B, G, I, { transB: true });
    gpuSwapLeading(ctx, this, "dinputs batch-major", dx, dinputs, T, B, I);
    return dinputs;
  }
}

/**
 * Checks that `inputs` is a float32 `[batch, T, inputSize]` tensor on the device with a
 * non-empty batch and at least one step, and returns `[batch, T]`.
 *
 * @throws {TypeError} for another rank, feature count or dtype; {RangeError} for an empty
 * batch or T = 0.
 */
export function expectGpuSequence(
  inputs: GpuTensor,
  where: string,
  inputSize: number,
): [number, number] {
  const shape = formatShape(inputs.shape);
  if (inputs.shape.length !== 3 || inputs.shape[2] !== inputSize) {
    throw new TypeError(`${where}: inputs must be [batch, T, ${inputSize}], got shape ${shape}`);
  }
  if (inputs.dtype !== "float32") {
    throw new TypeError(`${where}: inputs must be float32 on the device, got ${inputs.dtype}`);
  }
  const [batch, steps] = inputs.shape;
  if (batch === 0) throw new RangeError(`${where}: inputs are an empty batch (shape ${shape})`);
  if (steps === 0) {
    throw new RangeError(`${where}: inputs have no time steps (T = 0, shape ${shape})`);
  }
  return [batch, steps];
}

// out[c, a, f] = src[a, c, f]: [A, C, F] → [C, A, F], one invocation per element of out.
const SWAP_LEADING = /* wgsl */ `
struct P { A: u32, C: u32, F: u32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${flatIndex()}
  if (i >= p.A * p.C * p.F) { return; }
  let f = i % p.F;
  let a = (i / p.F) % p.A;
  let c = i / (p.F * p.A);
  out[i] = src[(a * p.C + c) * p.F + f];
}`;

/**
 * {@linkcode toTimeMajor} (A = B, C = T) and {@linkcode toBatchMajor} (A = T, C = B) on the
 * device: `src` [A, C, F] → `out` [C, A, F].
 */
export function gpuSwapLeading(
  ctx: GpuContext,
  owner: object,
  key: string,
  src: GpuTensor, // [A, C, F]
  out: GpuTensor, // [C, A, F]
  A: number,
  C: number,
  F: number,
): void {
  const count = A * C * F;
  const code = kernel("Recurrent swap leading dimensions", SWAP_LEADING);
  ctx.run(owner, key, code, [src, out], [A, C, F], gridFor(count));
}

/**
 * WGSL functions of the cell kernels: `logistic(x)` = σ(x) = 1/(1 + e) for x ≥ 0, else
 * e/(1 + e), with e = exp(−|x|) ≤ 1 (no exp overflows); `tanhAccurate(x)`, tanh without the
 * builtin (whose accuracy varies by driver): its Taylor series to x⁹ for |x| < 1/4, else
 * sign(x)·(1 − e)/(1 + e) with e = exp(−2|x|) (as the Tanh activation's GPU side).
 */
export const GATE_FUNCTIONS: string = /* wgsl */ `
fn logistic(x: f32) -> f32 {
  let e = exp(-abs(x));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}
fn tanhAccurate(x: f32) -> f32 {
  let a = abs(x);
  let x2 = x * x;
  // x − x³/3 + 2x⁵/15 − 17x⁷/315 + 62x⁹/2835
  let series = x * (1.0 + x2 * (-0.33333333 + x2 * (0.13333333 +
    x2 * (-0.053968254 + x2 * 0.021869488))));
  let e = exp(-2.0 * a);
  return select(sign(x) * (1.0 - e) / (1.0 + e), series, a < 0.25);
}`;

/**
 * The uniforms of the cell kernels (`p`): B, H, the step t, T, and whether the outputs hold
 * every step (1) or only the last (0); {@linkcode cellUniforms} gives their words.
 */
export const CELL_UNIFORMS: string = /* wgsl */ `
struct P { batch: u32, hidden: u32, t: u32, steps: u32, sequences: u32 };
@group(0) @binding(0) var<uniform> p: P;`;

/** The words of {@linkcode CELL_UNIFORMS} for step t of a `[B, T]` sequence. */
export function cellUniforms(
  cache: GpuSequenceCache,
  hidden: number,
  t: number,
  sequences: boolean,
): number[] {
  return [cache.batch, hidden, t, cache.steps, sequences ? 1 : 0];
}
