// How the training loop feeds a model: inputs and targets checked once, then batches, as
// views where the rows are contiguous and gathered into reused buffers where shuffled.
import { describeKind } from "../core/_describe.ts";
import type { Targets } from "../core/loss.ts";
import { targetCount } from "../losses/_targets.ts";
import {
  allocate,
  type DType,
  formatShape,
  type NestedArray,
  Tensor,
  type TensorLike,
  toTensor,
} from "../core/tensor.ts";

/**
 * Targets as `fit`, `evaluate` and `trainStep` take them: any {@linkcode Targets}, or
 * nested arrays (one-hot rows, regression values per output), which become a tensor.
 */
export type TargetsLike = Targets | readonly (readonly number[])[];

/**
 * Checks that `x` and `y` hold the same number of samples.
 *
 * @throws {TypeError} naming `where` and both counts.
 */
export function checkSampleCounts(x: Tensor, y: Targets, where: string): void {
  const samples = x.shape[0];
  const targets = targetCount(y);
  if (samples !== targets) {
    throw new TypeError(
      `${where}: x holds ${samples} samples, y holds ${targets}; they must match`,
    );
  }
}

/**
 * `y` in a form losses take: nested arrays become a tensor of `dtype`, anything else is
 * returned as it is.
 */
export function toTargets(y: TargetsLike, dtype: DType, where: string): Targets {
  if (Array.isArray(y) && y.length > 0 && typeof y[0] !== "number") {
    return toTensor(y as NestedArray, dtype, where, "y");
  }
  if (
    y instanceof Tensor || Array.isArray(y) || y instanceof Int32Array || y instanceof Uint8Array
  ) {
    return y as Targets;
  }
  throw new TypeError(
    `${where}: y must be class indices (an array, Int32Array or Uint8Array), nested arrays or ` +
      `a Tensor, got ${describeKind(y)}`,
  );
}

// "feature 3" for [samples, features]; "feature [0, 4, 7]" (channel, row, column) above.
function describeFeature(tensor: Tensor, index: number): string {
  const inner = tensor.shape.slice(1);
  if (inner.length <= 1) return `feature ${index}`;
  const position: number[] = [];
  for (let d = inner.length - 1; d >= 0; d--) {
    position.unshift(index % inner[d]);
    index = Math.floor(index / inner[d]);
  }
  return `feature ${formatShape(position)}`;
}

/**
 * Checks that `tensor` holds no NaN or ±Infinity, so that a bad value in the data is named
 * where it is rather than found later as a NaN loss.
 *
 * @throws {RangeError} naming `where`, `argument`, the first bad value's sample and feature.
 */
export function checkFinite(tensor: Tensor, where: string, argument: string): void {
  const data = tensor.data;
  for (let i = 0; i < data.length; i++) {
    const value = data[i];
    // value − value is 0 for every finite number, NaN for NaN and ±Infinity.
    if (value - value === 0) continue;
    const width = tensor.size / (tensor.shape[0] || 1);
    const sample = Math.floor(i / width);
    throw new RangeError(
      `${where}: ${argument} holds ${value} at sample ${sample}, ${
        describeFeature(tensor, i - sample * width)
      } (${argument} shape ${formatShape(tensor.shape)}); remove or impute non-finite values first`,
    );
  }
}

/** Inputs and targets of a `fit` or `evaluate` call, converted and checked once. */
export interface Data {
  /** Inputs `[samples, …]` in the model's dtype. */
  inputs: Tensor;
  /** Targets, one per sample. */
  y: Targets;
}

/**
 * `x` and `y` as tensors and targets of `dtype`: the same sample count, at least one
 * sample, and only finite values.
 *
 * @throws {TypeError} for data of the wrong kind or sample counts that differ.
 * @throws {RangeError} for an empty `x` or a non-finite value.
 */
export function checkedData(x: TensorLike, y: TargetsLike, dtype: DType, where: string): Data {
  const inputs = toTensor(x, dtype, where, "x");
  const targets = toTargets(y, dtype, where);
  checkSampleCounts(inputs, targets, where);
  if (inputs.rank === 0 || inputs.shape[0] === 0) {
    throw new RangeError(`${where}: x holds no samples`);
  }
  checkFinite(inputs, where, "x");
  if (targets instanceof Tensor) checkFinite(targets, where, "y");
  return { inputs, y: targets };
}

/**
 * The targets of the samples at `rows`, in that order, in the same form as `targets`. With
 * `out` (what an earlier call returned for as many rows), it is overwritten and returned
 * instead of allocating.
 */
export function takeTargets(targets: Targets, rows: ArrayLike<number>, out?: Targets): Targets {
  if (targets instanceof Tensor) {
    return takeRows(targets, rows, out instanceof Tensor ? out : undefined);
  }
  // A plain array may hold regression values: keep them as numbers, not int32.
  if (Array.isArray(targets)) return Array.from(rows, (row) => targets[row]);
  const taken = out instanceof Int32Array && out.length === rows.length
    ? out
    : new Int32Array(rows.length);
  for (let i = 0; i < rows.length; i++) taken[i] = targets[rows[i]];
  return taken;
}

/**
 * The rows of `tensor` (first dimension) at `rows`, in that order: a new tensor, or `out`
 * overwritten when given (a training loop's reused batch buffer, so that a step allocates
 * no batch).
 *
 * @throws {TypeError} when `out` is not of the tensor's dtype and of shape
 * `[rows.length, …tensor.shape[1:]]`.
 */
export function takeRows(tensor: Tensor, rows: ArrayLike<number>, out?: Tensor): Tensor {
  const width = tensor.size / (tensor.shape[0] || 1);
  if (out && !fitsRows(out, tensor, rows.length)) {
    throw new TypeError(
      `takeRows: out is ${out.dtype} ${formatShape(out.shape)}, expected ${tensor.dtype} ${
        formatShape([rows.length, ...tensor.shape.slice(1)])
      }`,
    );
  }
  const data = out?.data ?? allocate(tensor.dtype, rows.length * width);
  const source = tensor.data;
  // One memcpy per row (set of a subarray) beat an element loop 2.5× on 784-wide rows.
  for (let i = 0; i < rows.length; i++) {
    const start = rows[i] * width;
    data.set(source.subarray(start, start + width), i * width);
  }
  return out ?? new Tensor(data, [rows.length, ...tensor.shape.slice(1)]);
}

// Whether `out` has the dtype and shape of `count` rows of `tensor`.
function fitsRows(out: Tensor, tensor: Tensor, count: number): boolean {
  const { shape } = tensor;
  if (out.dtype !== tensor.dtype || out.rank !== tensor.rank || out.shape[0] !== count) {
    return false;
  }
  for (let d = 1; d < shape.length; d++) if (out.shape[d] !== shape[d]) return false;
  return true;
}

/** Rows `[start, start + count)` of `tensor`, as a view sharing its memory. */
export function sliceRows(tensor: Tensor, start: number, count: number): Tensor {
  const width = tensor.size / tensor.shape[0];
  const data = tensor.data.subarray(start * width, (start + count) * width);
  return new Tensor(data, [count, ...tensor.shape.slice(1)]);
}

/** Targets of samples `[start, start + count)`, as a view where the form allows one. */
export function sliceTargets(y: Targets, start: number, count: number): Targets {
  if (y instanceof Tensor) return sliceRows(y, start, count);
  return "subarray" in y ? y.subarray(start, start + count) : y.slice(start, start + count);
}

/**
 * The batch of `count` samples from `start`: views when contiguous, copies in the
 * permutation's order when `order` is given (into `buffers` when given).
 */
export function batchOf(
  inputs: Tensor,
  y: Targets,
  start: number,
  count: number,
  order?: Int32Array,
  buffers?: BatchBuffers,
): [Tensor, Targets] {
  if (order) {
    const rows = order.subarray(start, start + count);
    return buffers ? buffers.take(inputs, y, rows) : [takeRows(inputs, rows), takeTargets(y, rows)];
  }
  if (count === inputs.shape[0]) return [inputs, y];
  return [sliceRows(inputs, start, count), sliceTargets(y, start, count)];
}

/**
 * Shuffled batches gathered into buffers reused from step to step, one pair per batch size
 * (the full one and an epoch's smaller last one): gathering every step into memory touched
 * before is ~10× cheaper than into fresh memory (page faults, see docs/speed.md), and a
 * step allocates no batch.
 */
export class BatchBuffers {
  #bySize = new Map<number, [Tensor, Targets]>();

  /** The samples at `rows`, copied into this size's buffers. */
  take(inputs: Tensor, y: Targets, rows: Int32Array): [Tensor, Targets] {
    const batch = this.#bySize.get(rows.length);
    if (!batch) {
      const fresh: [Tensor, Targets] = [takeRows(inputs, rows), takeTargets(y, rows)];
      this.#bySize.set(rows.length, fresh);
      return fresh;
    }
    takeRows(inputs, rows, batch[0]);
    batch[1] = takeTargets(y, rows, batch[1]);
    return batch;
  }
}
