// What LSTM and GRU share: their four params, the checks of their inputs, the transposes
// between batch-major and time-major sequences, cached per-step views, and (from
// core/_fast_math.ts) a sigmoid and a tanh accurate to a few float64 ulps that are faster
// than Math.exp/Math.tanh in the gate loops. Private to the layers.
//
// Dimension letters: B batch, T time steps, I input features, H hidden units, G gates (4
// for the LSTM, 3 for the GRU), so a row of gates holds G·H pre-activations.
import { describe, describeKind } from "../core/_describe.ts";
import type { Backend, RightProduct } from "../core/backend.ts";
import { checkAllocation } from "../core/_allocation.ts";
import { Param } from "../core/param.ts";
import { type RandomOptions, resolveRandom } from "../core/random.ts";
import {
  type DType,
  type FloatArray,
  formatShape,
  type NestedArray,
  Tensor,
} from "../core/tensor.ts";
import { fillExplicit } from "./_weights.ts";

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
  /** `[I, G·H]` (the transpose of `weight_ih_l0`) */
  inputWeights: Param;
  /** `[H, G·H]` (the transpose of `weight_hh_l0`) */
  recurrentWeights: Param;
  /** `[G·H]` (`bias_ih_l0`) */
  inputBiases: Param;
  /** `[G·H]` (`bias_hh_l0`) */
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
      : typeof dvalues;
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
