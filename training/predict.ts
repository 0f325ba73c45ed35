import { describe, describeKind } from "../core/_describe.ts";
import type { Chain } from "../core/chain.ts";
import { formatShape, Tensor, type TensorLike, toTensor } from "../core/tensor.ts";
import { checkFinite, sliceRows } from "./batches.ts";

/** Options of `Sequential.predict`. */
export interface PredictOptions {
  /** Samples per forward pass; all at once when omitted. */
  batchSize?: number;
  /**
   * Let NaN and ±Infinity inputs through (they give NaN outputs) instead of refusing them
   * as `fit` does; false when omitted.
   */
  allowNonFinite?: boolean;
}

// The value of `x` at flat row-major index `index`, as the caller gave it (before any dtype
// conversion): its own number where `x` is nested arrays or a tensor, else undefined.
function givenAt(x: TensorLike, shape: readonly number[], index: number): number | undefined {
  if (x instanceof Tensor) return x.data[index];
  let level: unknown = x;
  let stride = shape.reduce((a, b) => a * b, 1);
  for (const dim of shape) {
    stride /= dim;
    const i = Math.floor(index / stride);
    index -= i * stride;
    level = (level as ArrayLike<unknown>)[i];
  }
  return typeof level === "number" ? level : undefined;
}

// "sample 2, feature 3" for [samples, features]; "sample 0, feature [0, 4, 7]" (channel,
// row, column) above, as `fit`'s check names a value.
function positionOf(shape: readonly number[], index: number): string {
  const inner = shape.slice(1);
  const width = inner.reduce((a, b) => a * b, 1);
  const sample = Math.floor(index / width);
  let rest = index - sample * width;
  if (inner.length <= 1) return `sample ${sample}, feature ${rest}`;
  const position: number[] = [];
  for (let d = inner.length - 1; d >= 0; d--) {
    position.unshift(rest % inner[d]);
    rest = Math.floor(rest / inner[d]);
  }
  return `sample ${sample}, feature ${formatShape(position)}`;
}

// Refuses non-finite inputs as `fit` does, and names a finite float64 value that the
// conversion to a float32 model turned into ±Infinity as an overflow.
export function checkInputs(x: TensorLike, inputs: Tensor, where: string): void {
  try {
    checkFinite(inputs, where, "x");
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    const data = inputs.data;
    let index = 0;
    while (data[index] - data[index] === 0) index++;
    const given = givenAt(x, inputs.shape, index);
    if (given !== undefined && Number.isFinite(given)) {
      throw new RangeError(
        `${where}: x holds ${describe(given)} at ${positionOf(inputs.shape, index)} (x shape ${
          formatShape(inputs.shape)
        }), which overflows float32 (largest 3.4028234663852886e+38); scale the inputs down, ` +
          `or use a float64 model`,
      );
    }
    throw new RangeError(`${error.message}, or pass { allowNonFinite: true } to predict anyway`);
  }
}

/** `x` as a tensor of the model's dtype, refused as `predict` refuses it. */
export function checkedInputs(
  model: Chain,
  x: TensorLike,
  options: PredictOptions,
  where: string,
): Tensor {
  const inputs = toTensor(x, model.dtype, where, "x");
  const allowNonFinite = options.allowNonFinite ?? false;
  if (typeof allowNonFinite !== "boolean") {
    throw new TypeError(
      `${where}: allowNonFinite must be a boolean, got ${describeKind(allowNonFinite)}`,
    );
  }
  if (!allowNonFinite) checkInputs(x, inputs, where);
  return inputs;
}

/**
 * Outputs of `model` for `x` at inference (no dropout), optionally a batch at a time.
 *
 * @throws {TypeError} when `x` is neither a tensor nor nested arrays of numbers.
 * @throws {RangeError} when `batchSize` is not a positive integer, or when `x` holds NaN or
 * ±Infinity (unless `allowNonFinite`) or a float64 value too large for a float32 model.
 */
export function predict(model: Chain, x: TensorLike, options: PredictOptions = {}): Tensor {
  const where = "Sequential.predict";
  const inputs = checkedInputs(model, x, options, where);
  const samples = inputs.shape[0] ?? 0;
  const batchSize = options.batchSize ?? samples;
  if (options.batchSize !== undefined && (!Number.isSafeInteger(batchSize) || batchSize <= 0)) {
    throw new RangeError(
      `${where}: batchSize must be a positive integer, got ${describe(options.batchSize)}`,
    );
  }
  if (batchSize >= samples) return model.forward(inputs, { training: false });
  let out: Tensor | undefined;
  for (let start = 0; start < samples; start += batchSize) {
    const count = Math.min(batchSize, samples - start);
    // Copied at once: a layer may reuse its output buffer on the next forward.
    const part = model.forward(sliceRows(inputs, start, count), { training: false });
    out ??= Tensor.zeros([samples, ...part.shape.slice(1)], { dtype: part.dtype });
    out.data.set(part.data, start * (part.size / part.shape[0]));
  }
  return out!;
}
