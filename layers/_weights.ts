// What the layers with weights (Dense, Conv2D) share: explicit initial values, the L1/L2
// penalties and their gradients. Private to the layers.
import type { GpuContext, GpuSink } from "../core/gpu.ts";
import { gpuMap, gpuSumAll } from "../backends/webgpu_ops.ts";
import { describe, describeKind } from "../core/_describe.ts";
import type { Param } from "../core/param.ts";
import { type FloatArray, formatShape, type NestedArray, type Tensor } from "../core/tensor.ts";

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
    throw new RangeError(`${where}: ${key} must be a finite number ≥ 0, got ${describe(value)}`);
  }
  return value;
}

// The largest finite float32, 2^128 − 2^104: a float64 above it (in magnitude) becomes ±Infinity.
const FLOAT32_MAX = 3.4028234663852886e38;

function isArrayLevel(value: unknown): value is ArrayLike<unknown> {
  return Array.isArray(value) || (ArrayBuffer.isView(value) && !(value instanceof DataView));
}

// `weights[1][0]`: where a value sits, as the user would index it.
function pathOf(name: string, indices: readonly number[]): string {
  return name + indices.map((i) => `[${i}]`).join("");
}

// The shape of `given` read along its first elements (a typed array is one level).
function shapeOf(given: unknown, name: string, where: string): number[] {
  const shape: number[] = [];
  const path: number[] = [];
  let level = given;
  while (typeof level !== "number") {
    if (!isArrayLevel(level)) {
      throw new TypeError(
        `${where}: ${pathOf(name, path)} must be a number or an array of numbers, got ${
          describeKind(level)
        }`,
      );
    }
    shape.push(level.length);
    if (level.length === 0) break;
    level = level[0];
    path.push(0);
  }
  return shape;
}

// Checks every value of `given` (shaped `shape`, read along its first elements): arrays of
// that length at every level, finite numbers at the last, that fit in float32 when `float32`.
function checkValues(
  given: unknown,
  shape: readonly number[],
  float32: boolean,
  name: string,
  where: string,
): void {
  const path: number[] = [];
  const visit = (value: unknown, depth: number): void => {
    if (depth === shape.length) {
      if (typeof value !== "number") {
        throw new TypeError(
          `${where}: ${pathOf(name, path)} must be a number, got ${describeKind(value)} (${name} ` +
            `must be nested arrays of numbers, or a flat array)`,
        );
      }
      // value − value is 0 for every finite number, NaN for NaN and ±Infinity.
      if (value - value !== 0) {
        throw new RangeError(
          `${where}: ${pathOf(name, path)} is ${describe(value)}; ${name} must be finite numbers`,
        );
      }
      if (float32 && Math.abs(value) > FLOAT32_MAX && !Number.isFinite(Math.fround(value))) {
        throw new RangeError(
          `${where}: ${pathOf(name, path)} is ${describe(value)}, which overflows float32 ` +
            `(largest ${FLOAT32_MAX}); scale ${name} down, or build the layer with dtype "float64"`,
        );
      }
      return;
    }
    if (!isArrayLevel(value) || value.length !== shape[depth]) {
      const first = pathOf(name, path.map(() => 0));
      const got = isArrayLevel(value)
        ? `has length ${value.length}, while ${first} has ${shape[depth]}`
        : `is ${describeKind(value)}, while ${first} is an array of ${shape[depth]}`;
      throw new TypeError(`${where}: ${name} is ragged: ${pathOf(name, path)} ${got}`);
    }
    for (let i = 0; i < value.length; i++) {
      path.push(i);
      visit(value[i], depth + 1);
      path.pop();
    }
  };
  visit(given, 0);
}

// Writes the values of `given` (checked, shaped `shape`) into `out` in row-major order.
function copyInto(given: unknown, depth: number, rank: number, out: FloatArray, offset: number) {
  const items = given as ArrayLike<unknown>;
  if (depth === rank - 1) {
    for (let i = 0; i < items.length; i++) out[offset + i] = items[i] as number;
    return offset + items.length;
  }
  for (let i = 0; i < items.length; i++) offset = copyInto(items[i], depth + 1, rank, out, offset);
  return offset;
}

/**
 * Copies `given` (nested arrays shaped like `target`, or a flat row-major array of its
 * size: a typed array or an array of numbers) into `target`, after checking every value.
 *
 * @throws {TypeError} naming `where` and `name` when the shape or size differs, the nesting
 * is ragged, or a value is not a number (a string, null, …), with the value's indices.
 * @throws {RangeError} naming `where`, `name` and the indices for NaN or ±Infinity, or for
 * a value that overflows a float32 `target`.
 */
export function fillExplicit(
  target: Tensor,
  given: NestedArray,
  name: string,
  where: string,
): void {
  const shape = typeof given === "number" ? [] : shapeOf(given, name, where);
  const out = target.data;
  checkValues(given, shape, out instanceof Float32Array, name, where);
  const flat = shape.length === 1 && shape[0] === target.size;
  const same = shape.length === target.rank && shape.every((d, i) => d === target.shape[i]);
  if (!flat && !same) {
    throw new TypeError(
      `${where}: ${name} has shape ${formatShape(shape)}, expected ${formatShape(target.shape)}`,
    );
  }
  if (shape.length === 0) out[0] = given as number;
  else copyInto(given, 0, shape.length, out, 0);
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

/** The GPU side of {@linkcode addPenaltyGradient}: `grad += l1·sign(p) + 2·l2·p` on the device. */
export function gpuAddPenaltyGradient(
  ctx: GpuContext,
  owner: object,
  param: Param,
  l1: number,
  l2: number,
): void {
  if (l1 === 0 && l2 === 0) return;
  const { value, grad } = ctx.param(param);
  const expression = "select(s0, -s0, x0 < 0.0) + 2.0 * s1 * x0";
  gpuMap(ctx, owner, `penalty gradient ${param.name}`, expression, [value], grad, value.size, {
    scalars: [l1, l2],
    accumulate: true,
  });
}

/** The GPU side of {@linkcode penalty}: adds `l1·Σ|p| + l2·Σp²` to `sink`. */
export function gpuPenalty(
  ctx: GpuContext,
  owner: object,
  param: Param,
  l1: number,
  l2: number,
  sink: GpuSink,
): void {
  if (l1 === 0 && l2 === 0) return;
  const { value } = ctx.param(param);
  const terms = ctx.buffer(owner, `penalty ${param.name}`, value.shape);
  const key = `penalty ${param.name}`;
  gpuMap(ctx, owner, key, "s0 * abs(x0) + s1 * x0 * x0", [value], terms, value.size, {
    scalars: [l1, l2],
  });
  gpuSumAll(ctx, owner, key, terms, value.size, sink.results, sink.index);
}
