// What the layers with weights (Dense, Conv2D) share: explicit initial values, the L1/L2
// penalties and their gradients. Private to the layers.
import type { Param } from "../core/param.ts";
import { formatShape, type NestedArray, Tensor } from "../core/tensor.ts";

/** The penalty options of a layer with weights and biases. */
export interface PenaltyOptions {
  /** L1 penalty on the weights: adds `l1·Σ|w|` to the loss. */
  weightRegularizerL1?: number;
  /** L2 penalty on the weights: adds `l2·Σw²` to the loss. */
  weightRegularizerL2?: number;
  /** L1 penalty on the biases. */
  biasRegularizerL1?: number;
  /** L2 penalty on the biases. */
  biasRegularizerL2?: number;
}

/** The four penalty options, in the order configs and summaries list them. */
export const REGULARIZERS = [
  "weightRegularizerL1",
  "weightRegularizerL2",
  "biasRegularizerL1",
  "biasRegularizerL2",
] as const;

/**
 * The penalty `key` of `options` (0 when absent).
 *
 * @throws {RangeError} naming `where` when it is not a finite number ≥ 0.
 */
export function checkPenalty(
  options: PenaltyOptions,
  key: typeof REGULARIZERS[number],
  where: string,
): number {
  const value = options[key] ?? 0;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new RangeError(`${where}: ${key} must be a finite number ≥ 0, got ${value}`);
  }
  return value;
}

/**
 * Copies `given` (nested arrays shaped like `target`, or a flat row-major array of its
 * size: a typed array or an array of numbers) into `target`.
 *
 * @throws {TypeError} naming `where` and `name` when the shape or size differs.
 */
export function fillExplicit(
  target: Tensor,
  given: NestedArray,
  name: string,
  where: string,
): void {
  const view = ArrayBuffer.isView(given) && !(given instanceof DataView);
  const source = view
    ? new Tensor(Float64Array.from(given as ArrayLike<number>), [
      (given as ArrayLike<number>).length,
    ])
    : Tensor.from(given, { dtype: "float64" });
  const flat = view || source.rank === 1;
  if (source.size !== target.size || (!flat && source.rank !== target.rank)) {
    throw new TypeError(
      `${where}: ${name} has shape ${formatShape(source.shape)}, expected ${
        formatShape(target.shape)
      }`,
    );
  }
  target.data.set(source.data);
}

// Penalty gradient: d(l1·Σ|p|)/dp = l1·sign(p) (the book's sign, +1 at 0); d(l2·Σp²)/dp = 2·l2·p.
/** Adds the gradient of `l1·Σ|p| + l2·Σp²` to `param.grad`. */
export function addPenaltyGradient(param: Param, l1: number, l2: number): void {
  if (l1 === 0 && l2 === 0) return;
  const value = param.value.data;
  const grad = param.grad.data;
  for (let i = 0; i < value.length; i++) {
    grad[i] += (value[i] < 0 ? -l1 : l1) + 2 * l2 * value[i];
  }
}

/** `l1·Σ|p| + l2·Σp²` of the param's current values. */
export function penalty(param: Param, l1: number, l2: number): number {
  if (l1 === 0 && l2 === 0) return 0;
  let abs = 0;
  let squares = 0;
  for (const v of param.value.data) {
    abs += Math.abs(v);
    squares += v * v;
  }
  return l1 * abs + l2 * squares;
}
