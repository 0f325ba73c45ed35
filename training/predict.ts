import type { Chain } from "../core/chain.ts";
import { Tensor, type TensorLike, toTensor } from "../core/tensor.ts";
import { sliceRows } from "./batches.ts";

/** Options of `Sequential.predict`. */
export interface PredictOptions {
  /** Samples per forward pass; all at once when omitted. */
  batchSize?: number;
}

/**
 * Outputs of `model` for `x` at inference (no dropout), optionally a batch at a time.
 *
 * @throws {TypeError} when `x` is neither a tensor nor nested arrays of numbers.
 * @throws {RangeError} when `batchSize` is not a positive integer.
 */
export function predict(model: Chain, x: TensorLike, options: PredictOptions = {}): Tensor {
  const where = "Sequential.predict";
  const inputs = toTensor(x, model.dtype, where, "x");
  const samples = inputs.shape[0] ?? 0;
  const batchSize = options.batchSize ?? samples;
  if (options.batchSize !== undefined && (!Number.isSafeInteger(batchSize) || batchSize <= 0)) {
    throw new RangeError(
      `${where}: batchSize must be a positive integer, got ${options.batchSize}`,
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
