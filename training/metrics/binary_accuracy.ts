import { describe } from "../../core/_describe.ts";
import type { Targets } from "../../core/loss.ts";
import { elementTargets, type Metric } from "../metric.ts";
import type { Tensor } from "../../core/tensor.ts";
import type { MetricOptions } from "./categorical_accuracy.ts";
import type { GpuContext, GpuMetric, GpuSink, GpuTensor } from "../../core/gpu.ts";
import { gpuMap, gpuSumAll } from "../../backends/webgpu_ops.ts";
import { f32Below, gpuValueBatch } from "../../losses/_gpu_targets.ts";

/** Options of {@linkcode BinaryAccuracy}. */
export interface BinaryAccuracyOptions extends MetricOptions {
  /** An output above it counts as 1; 0.5 when omitted (outputs of a sigmoid). */
  threshold?: number;
}

/**
 * Binary accuracy, the book's `Accuracy_Categorical(binary=True)`: the fraction of output
 * elements for which `(output > 0.5) == target`.
 *
 * Shapes: outputs `[batch, outputs]` (one independent yes/no per column); targets 0/1
 * shaped like the outputs, or `[batch]` for a single output.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BinaryAccuracy, Tensor } from "@chainrule/nn";
 *
 * const metric = new BinaryAccuracy();
 * assert.equal(metric.measure(Tensor.from([[0.9], [0.2], [0.7], [0.4]]), [1, 0, 0, 0]), 0.75);
 * ```
 */
export class BinaryAccuracy implements Metric, GpuMetric {
  /** Key in logs and history. */
  readonly name: string;
  /** An output above it counts as 1. */
  readonly threshold: number;

  /** Creates the metric. */
  constructor(options: BinaryAccuracyOptions = {}) {
    this.name = options.name ?? "accuracy";
    this.threshold = options.threshold ?? 0.5;
    if (!Number.isFinite(this.threshold)) {
      throw new RangeError(
        `new BinaryAccuracy: threshold must be finite, got ${describe(this.threshold)}`,
      );
    }
  }

  /** Fraction of elements where `(output > threshold) == target`. */
  measure(outputs: Tensor, targets: Targets): number {
    const y = elementTargets(outputs, targets, "BinaryAccuracy.measure");
    const values = outputs.data;
    let correct = 0;
    for (let i = 0; i < values.length; i++) {
      if ((values[i] > this.threshold ? 1 : 0) === y[i]) correct++;
    }
    return correct / values.length;
  }

  /**
   * {@linkcode BinaryAccuracy.measure} on the device: adds the batch's score to `sink`.
   * `targets` (float32) are shaped like the outputs, or `[batch]` for a single output.
   *
   * @throws {TypeError} when the targets' shape does not fit the outputs.
   */
  gpuMeasure(ctx: GpuContext, outputs: GpuTensor, targets: GpuTensor, sink: GpuSink): void {
    gpuValueBatch(outputs, targets, "BinaryAccuracy.gpuMeasure");
    const size = outputs.size;
    const hits = ctx.buffer(this, "hits", outputs.shape); // 1 where right, else 0
    // s0: the threshold rounded down to float32, so that x > s0 exactly when x > threshold.
    const right = "select(0.0, 1.0, select(0.0, 1.0, x0 > s0) == x1)";
    gpuMap(ctx, this, "hits", right, [outputs, targets], hits, size, {
      scalars: [f32Below(this.threshold)],
    });
    gpuSumAll(ctx, this, "mean", hits, size, sink.results, sink.index, { scale: 1 / size });
  }

  /** `BinaryAccuracy(threshold=0.5)` */
  toString(): string {
    return `BinaryAccuracy(threshold=${this.threshold})`;
  }
}
