import type { Targets } from "../../core/loss.ts";
import type { Metric } from "../metric.ts";
import { checkIgnoreIndex, classTargetsFor } from "../../losses/_targets.ts";
import type { Tensor } from "../../core/tensor.ts";
import type { GpuContext, GpuMetric, GpuSink, GpuTensor } from "../../core/gpu.ts";
import { kernel } from "../../backends/webgpu_ops.ts";
import {
  gpuClassBatch,
  gpuMeanIntoSink,
  ignoreWords,
  rowGrid,
  rowMain,
} from "../../losses/_gpu_targets.ts";

/** Options shared by the accuracy metrics. */
export interface MetricOptions {
  /** Key in logs and history; `"accuracy"` when omitted (the book calls them all accuracy). */
  name?: string;
}

/** Options of {@linkcode CategoricalAccuracy}. */
export interface CategoricalAccuracyOptions extends MetricOptions {
  /**
   * A class-index target that marks a position to leave out (padding), as the losses'
   * `ignoreIndex`: not counted, right or wrong. None when omitted.
   */
  ignoreIndex?: number;
}

// Per position: the argmax of the outputs (the first on a tie, as argmaxRows) against the
// target class (the argmax of a target row); hits = 1 where they agree; counted = 1, or 0
// (and hits 0) where the target is the ignoreIndex.
function measureCode(indices: boolean): string {
  return /* wgsl */ `
struct P { positions: u32, classes: u32, hasIgnore: u32, ignore: f32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> outputs: array<f32>; // [positions, classes]
@group(0) @binding(2) var<storage, read> targets: array<f32>; // [positions] or [positions, classes]
@group(0) @binding(3) var<storage, read_write> hits: array<f32>; // [positions]
@group(0) @binding(4) var<storage, read_write> counted: array<f32>; // [positions]
${rowMain("positions")}
  let row = i * p.classes;
  var best = 0u;
  for (var j = 1u; j < p.classes; j++) { if (outputs[row + j] > outputs[row + best]) { best = j; } }
${
    indices
      ? `  let label = targets[i];
  let ignored = p.hasIgnore != 0u && label == p.ignore;
  hits[i] = select(0.0, 1.0, !ignored && f32(best) == label);
  counted[i] = select(1.0, 0.0, ignored);`
      : `  var truth = 0u;
  for (var j = 1u; j < p.classes; j++) { if (targets[row + j] > targets[row + truth]) { truth = j; } }
  hits[i] = select(0.0, 1.0, best == truth);
  counted[i] = 1.0;`
  }
}`;
}

const MEASURE_INDICES = measureCode(true);
const MEASURE_ROWS = measureCode(false);

/**
 * Categorical accuracy, the book's `Accuracy_Categorical`: the fraction of samples (of
 * positions, for sequences) whose largest output is the target class.
 *
 * Shapes: outputs `[batch, classes]`, or `[batch, T, classes]` (any rank ≥ 2, the classes
 * last); targets class indices `[batch]` (`[batch, T]`) or one-hot rows shaped like the
 * outputs, as the classification losses take them. For sequences the score is the
 * fraction of the `batch·T` positions that are right, leaving out those whose target is
 * `ignoreIndex`; a batch with every position ignored scores 0. `fit` picks this metric by
 * itself when the shapes look like that and no `metrics` are given (with the loss's
 * `ignoreIndex`, if it has one).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CategoricalAccuracy, Tensor } from "@chainrule/nn";
 *
 * const metric = new CategoricalAccuracy();
 * assert.equal(metric.measure(Tensor.from([[0.1, 0.9], [0.8, 0.2]]), [1, 1]), 0.5);
 *
 * // One sequence of 3 positions, the last one padding (0): 1 of the 2 others is right.
 * const padded = new CategoricalAccuracy({ ignoreIndex: 0 });
 * const outputs = Tensor.from([[[0.1, 0.9, 0], [0.8, 0.1, 0.1], [0.1, 0.9, 0]]]);
 * assert.equal(padded.measure(outputs, Tensor.from([[1, 2, 0]])), 0.5);
 * ```
 */
export class CategoricalAccuracy implements Metric, GpuMetric {
  /** Key in logs and history. */
  readonly name: string;
  /** The class-index target left out of the score, if any. */
  readonly ignoreIndex?: number;

  /**
   * Creates the metric.
   *
   * @throws {RangeError} when `ignoreIndex` is not an integer.
   */
  constructor(options: CategoricalAccuracyOptions = {}) {
    this.name = options.name ?? "accuracy";
    this.ignoreIndex = checkIgnoreIndex("new CategoricalAccuracy", options.ignoreIndex);
  }

  /** Fraction of rows (positions) of `outputs` whose argmax is the target class. */
  measure(outputs: Tensor, targets: Targets): number {
    return accuracy(outputs, targets, `${this}.measure`, this.ignoreIndex);
  }

  /**
   * {@linkcode CategoricalAccuracy.measure} on the device: adds the batch's score to `sink`.
   * `targets` are float32 class indices `[positions]` (shaped like the outputs without their
   * last axis, or flat) or rows shaped like `outputs` `[batch, …, classes]`.
   *
   * @throws {TypeError} when the targets' shape does not fit the outputs.
   */
  gpuMeasure(ctx: GpuContext, outputs: GpuTensor, targets: GpuTensor, sink: GpuSink): void {
    const { positions, classes, indices } = gpuClassBatch(
      outputs,
      targets,
      "CategoricalAccuracy.gpuMeasure",
    );
    const hits = ctx.buffer(this, "hits", [positions]);
    const counted = ctx.buffer(this, "counted", [positions]);
    const count = ctx.buffer(this, "count", [1]);
    const words = [positions, classes, ...ignoreWords(this.ignoreIndex)];
    const measure = kernel("CategoricalAccuracy.measure", indices ? MEASURE_INDICES : MEASURE_ROWS);
    ctx.run(this, "hits", measure, [outputs, targets, hits, counted], words, rowGrid(positions));
    gpuMeanIntoSink(ctx, this, "mean", hits, counted, count, positions, sink);
  }

  /** `CategoricalAccuracy()`, `CategoricalAccuracy(ignoreIndex=0)` */
  toString(): string {
    const ignore = this.ignoreIndex === undefined ? "" : `ignoreIndex=${this.ignoreIndex}`;
    return `CategoricalAccuracy(${ignore})`;
  }
}

/**
 * Index of the largest value in each row of `outputs` `[batch, classes]` (along the last
 * axis for `[batch, …, classes]`, one per position, flattened); the first one on a tie.
 */
export function argmaxRows(outputs: Tensor): Int32Array {
  const classes = outputs.shape[outputs.rank - 1];
  const rows = classes > 0 ? outputs.size / classes : 0;
  const x = outputs.data;
  const out = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    const row = i * classes;
    let best = 0;
    for (let j = 1; j < classes; j++) if (x[row + j] > x[row + best]) best = j;
    out[i] = best;
  }
  return out;
}

/**
 * Fraction of samples (positions) whose largest output is the target class (the book's
 * accuracy), leaving out positions whose target is `ignoreIndex`.
 *
 * Targets are class indices or one-hot rows, as the classification losses take them; `where`
 * names the caller in error messages.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { accuracy, Tensor } from "@chainrule/nn";
 *
 * assert.equal(accuracy(Tensor.from([[0.1, 0.9], [0.8, 0.2]]), [1, 1]), 0.5);
 * // [batch 1, T 2, classes 2] against [batch 1, T 2] indices.
 * assert.equal(accuracy(Tensor.from([[[0.1, 0.9], [0.8, 0.2]]]), Tensor.from([[1, 0]])), 1);
 * ```
 */
export function accuracy(
  outputs: Tensor,
  targets: Targets,
  where = "accuracy",
  ignoreIndex?: number,
): number {
  const normalized = classTargetsFor(outputs, targets, where, { ignoreIndex });
  const predicted = argmaxRows(outputs);
  const truth = normalized.kind === "indices" ? normalized.indices : argmaxRows(normalized.rows);
  let correct = 0;
  let count = predicted.length;
  for (let i = 0; i < predicted.length; i++) {
    if (truth[i] === ignoreIndex && normalized.kind === "indices") count--;
    else if (predicted[i] === truth[i]) correct++;
  }
  return count === 0 ? 0 : correct / count;
}
