// The batch a per-output loss (binary cross-entropy, MSE, MAE, Huber) works on: outputs
// [batch, outputs] (or [batch, …] of any rank: images for an autoencoder) and targets shaped
// like them, flattened. Private to the losses.
import type { Targets } from "../core/loss.ts";
import { valueTargets } from "./_targets.ts";
import { expectMatrix, formatShape, Tensor } from "../core/tensor.ts";
import type { GpuContext, GpuSink, GpuTensor } from "../core/gpu.ts";
import { gpuMap, gpuSumAll } from "../backends/webgpu_ops.ts";
import { gpuValueBatch } from "./_gpu_targets.ts";

/** What a per-output loss's forward saw, kept for its backward. */
export interface PerOutputBatch {
  /** `[batch, outputs]`, or `[batch, …]` */
  outputs: Tensor;
  /** `[batch·outputs]`, row-major like the outputs. */
  y: ArrayLike<number>;
  /** Samples in the batch. */
  batch: number;
  /** Outputs per sample (all of a sample's elements). */
  width: number;
}

/**
 * Checks `outputs` and `targets` for `where` and returns them as a batch. Outputs of rank
 * above 2 (`[batch, …]`) need targets of the same shape.
 *
 * @throws {TypeError} when the targets' shape does not fit the outputs.
 */
export function perOutputBatch(outputs: Tensor, targets: Targets, where: string): PerOutputBatch {
  if (outputs instanceof Tensor && outputs.rank > 2) {
    const shape = formatShape(outputs.shape);
    const batch = outputs.shape[0];
    if (outputs.size === 0) {
      throw new RangeError(`${where}: outputs is an empty batch (shape ${shape})`);
    }
    if (!(targets instanceof Tensor) || formatShape(targets.shape) !== shape) {
      const got = targets instanceof Tensor ? formatShape(targets.shape) : `[${targets.length}]`;
      throw new TypeError(
        `${where}: targets have shape ${got}, expected ${shape} like the outputs (outputs shape ${shape})`,
      );
    }
    return { outputs, y: targets.data, batch, width: outputs.size / batch };
  }
  const [batch, width] = expectMatrix(outputs, where, "outputs");
  return { outputs, y: valueTargets(targets, batch, width, where), batch, width };
}

/**
 * The batch the last forward saw.
 *
 * @throws {Error} naming `where` when forward has not run.
 */
export function lastBatch(last: PerOutputBatch | undefined, where: string): PerOutputBatch {
  if (!last) throw new Error(`${where}: call forward first`);
  return last;
}

/** What a per-output loss's gpuForward saw, kept for its gpuBackward. */
export interface GpuPerOutputBatch {
  /** `[batch, outputs]`, or `[batch, …]` */
  outputs: GpuTensor;
  /** Shaped like the outputs, or `[batch]` for one output per sample. */
  targets: GpuTensor;
  /** Samples in the batch. */
  batch: number;
  /** Outputs per sample (all of a sample's elements). */
  width: number;
}

/**
 * The GPU forward of a per-output loss: checks the targets, computes each element's term
 * with `expression` (WGSL over `x0` the output, `x1` the target and the `scalars` `s0`, …)
 * and adds their mean over every element to `sink`.
 *
 * @throws {TypeError} naming `where` and both shapes when the targets do not fit.
 */
export function gpuPerOutputForward(
  ctx: GpuContext,
  owner: object,
  where: string,
  expression: string,
  outputs: GpuTensor, // [batch, …]
  targets: GpuTensor, // [batch, …] or [batch]
  sink: GpuSink,
  scalars: readonly number[] = [],
): GpuPerOutputBatch {
  const { batch, width } = gpuValueBatch(outputs, targets, where);
  const size = outputs.size;
  const terms = ctx.buffer(owner, "terms", outputs.shape);
  gpuMap(ctx, owner, "forward", expression, [outputs, targets], terms, size, { scalars });
  gpuSumAll(ctx, owner, "mean", terms, size, sink.results, sink.index, { scale: 1 / size });
  return { outputs, targets, batch, width };
}

/**
 * The GPU backward of a per-output loss: `dinputs = expression` per element (WGSL over
 * `x0` the output, `x1` the target and the `scalars` `s0`, …), shaped like the outputs.
 *
 * @throws {Error} naming `where` when gpuForward has not run.
 */
export function gpuPerOutputBackward(
  ctx: GpuContext,
  owner: object,
  last: GpuPerOutputBatch | undefined,
  where: string,
  expression: string,
  scalars: readonly number[],
): GpuTensor {
  if (!last) throw new Error(`${where}: call gpuForward first`);
  const { outputs, targets } = last;
  const dinputs = ctx.buffer(owner, "dinputs", outputs.shape);
  gpuMap(ctx, owner, "backward", expression, [outputs, targets], dinputs, outputs.size, {
    scalars,
  });
  return dinputs;
}
