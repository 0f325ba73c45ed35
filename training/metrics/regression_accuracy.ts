import { describe } from "../../core/_describe.ts";
import type { Targets } from "../../core/loss.ts";
import { elementTargets, type Metric } from "../metric.ts";
import { Tensor } from "../../core/tensor.ts";
import type { MetricOptions } from "./categorical_accuracy.ts";
import type { GpuContext, GpuMetric, GpuSink, GpuTensor } from "../../core/gpu.ts";
import { gpuMap, gpuSumAll } from "../../backends/webgpu_ops.ts";
import { f32Above, gpuValueBatch } from "../../losses/_gpu_targets.ts";

/** Options of {@linkcode RegressionAccuracy}. */
export interface RegressionAccuracyOptions extends MetricOptions {
  /** A prediction within it of the target counts as right; derived from the data when omitted. */
  tolerance?: number;
  /** When deriving: tolerance = std(targets) / divisor; 250 when omitted (the book's). */
  divisor?: number;
}

/**
 * Regression "accuracy", the book's `Accuracy_Regression`: the fraction of output elements
 * with `|prediction − target| < tolerance`, where the tolerance is `std(y) / 250` of the
 * first targets it is prepared with (the training targets, as the book's `init(y)` does).
 *
 * Shapes: outputs `[batch, outputs]`; targets shaped like the outputs, or `[batch]` for a
 * single output.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RegressionAccuracy, Tensor } from "@chainrule/nn";
 *
 * const metric = new RegressionAccuracy({ tolerance: 0.1 });
 * assert.equal(metric.measure(Tensor.from([[1.05], [2.5]]), [1, 2]), 0.5);
 * ```
 */
export class RegressionAccuracy implements Metric, GpuMetric {
  /** Key in logs and history. */
  readonly name: string;
  /** Divisor of the standard deviation when the tolerance is derived. */
  readonly divisor: number;
  #tolerance?: number;

  /** Creates the metric. */
  constructor(options: RegressionAccuracyOptions = {}) {
    this.name = options.name ?? "accuracy";
    this.divisor = options.divisor ?? 250;
    if (!Number.isFinite(this.divisor) || this.divisor <= 0) {
      throw new RangeError(
        `new RegressionAccuracy: divisor must be a finite number > 0, got ${
          describe(this.divisor)
        }`,
      );
    }
    if (options.tolerance !== undefined) {
      if (!Number.isFinite(options.tolerance) || options.tolerance < 0) {
        throw new RangeError(
          `new RegressionAccuracy: tolerance must be a finite number ≥ 0, got ${
            describe(options.tolerance)
          }`,
        );
      }
      this.#tolerance = options.tolerance;
    }
  }

  /** The tolerance in use; undefined until given or prepared. */
  get tolerance(): number | undefined {
    return this.#tolerance;
  }

  /** Derives the tolerance `std(targets) / divisor` unless one is already set. */
  prepare(targets: Targets): void {
    if (this.#tolerance !== undefined) return;
    const y = targets instanceof Tensor ? targets.data : targets;
    let mean = 0;
    for (let i = 0; i < y.length; i++) mean += y[i];
    mean /= y.length;
    let variance = 0;
    for (let i = 0; i < y.length; i++) variance += (y[i] - mean) ** 2;
    this.#tolerance = Math.sqrt(variance / y.length) / this.divisor;
  }

  /** Fraction of elements with `|output − target| < tolerance`. */
  measure(outputs: Tensor, targets: Targets): number {
    const y = elementTargets(outputs, targets, "RegressionAccuracy.measure");
    const tolerance = this.#tolerance;
    if (tolerance === undefined) {
      throw new Error(
        "RegressionAccuracy.measure: no tolerance yet; pass { tolerance } or call prepare(targets) " +
          "first (fit and evaluate do)",
      );
    }
    const values = outputs.data;
    let correct = 0;
    for (let i = 0; i < values.length; i++) if (Math.abs(values[i] - y[i]) < tolerance) correct++;
    return correct / values.length;
  }

  /**
   * {@linkcode RegressionAccuracy.measure} on the device: adds the batch's score to `sink`.
   * `targets` (float32) are shaped like the outputs, or `[batch]` for a single output; the
   * tolerance is the one given or prepared on the CPU.
   *
   * @throws {TypeError} when the targets' shape does not fit the outputs.
   * @throws {Error} when there is no tolerance yet.
   */
  gpuMeasure(ctx: GpuContext, outputs: GpuTensor, targets: GpuTensor, sink: GpuSink): void {
    gpuValueBatch(outputs, targets, "RegressionAccuracy.gpuMeasure");
    const tolerance = this.#tolerance;
    if (tolerance === undefined) {
      throw new Error(
        "RegressionAccuracy.gpuMeasure: no tolerance yet; pass { tolerance } or call " +
          "prepare(targets) first (fit and evaluate do)",
      );
    }
    const size = outputs.size;
    const hits = ctx.buffer(this, "hits", outputs.shape); // 1 where right, else 0
    // s0: the tolerance rounded up to float32, so that d < s0 exactly when d < tolerance.
    gpuMap(
      ctx,
      this,
      "hits",
      "select(0.0, 1.0, abs(x0 - x1) < s0)",
      [outputs, targets],
      hits,
      size,
      {
        scalars: [f32Above(tolerance)],
      },
    );
    gpuSumAll(ctx, this, "mean", hits, size, sink.results, sink.index, { scale: 1 / size });
  }

  /** `RegressionAccuracy(tolerance=0.002)` */
  toString(): string {
    return `RegressionAccuracy(tolerance=${this.#tolerance ?? `std/${this.divisor}`})`;
  }
}
