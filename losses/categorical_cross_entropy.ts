import type { JsonObject } from "../core/json.ts";
import type { Loss, Targets } from "../core/loss.ts";
import { checkIgnoreIndex, type ClassTargets, classTargetsFor } from "./_targets.ts";
import { allocate, Tensor } from "../core/tensor.ts";
import { clip, CLIP_WGSL, unclipped } from "./_clip.ts";
import type { ClassLossOptions } from "./softmax_cross_entropy.ts";
import type { GpuContext, GpuLoss, GpuSink, GpuTensor } from "../core/gpu.ts";
import { kernel } from "../backends/webgpu_ops.ts";
import {
  crossEntropyTerms,
  gpuClassBatch,
  gpuMeanIntoSink,
  ignoreWords,
  rowGrid,
  rowMain,
} from "./_gpu_targets.ts";

// Per position: terms = −log(clip(p_y)), or −Σ_j y_j·log(clip(p_j)) for rows; counted = 1,
// or 0 (and terms 0) where the target is the ignoreIndex.
function forwardCode(indices: boolean): string {
  return /* wgsl */ `
struct P { positions: u32, classes: u32, hasIgnore: u32, ignore: f32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> outputs: array<f32>; // [positions, classes]
@group(0) @binding(2) var<storage, read> targets: array<f32>; // [positions] or [positions, classes]
@group(0) @binding(3) var<storage, read_write> terms: array<f32>; // [positions]
@group(0) @binding(4) var<storage, read_write> counted: array<f32>; // [positions]
${CLIP_WGSL}
${rowMain("positions")}
  let row = i * p.classes;
${crossEntropyTerms(indices, "outputs")}
}`;
}

// dinputs = −y / p / count inside the clipping range, 0 where p was clipped or ignored.
function backwardCode(indices: boolean): string {
  return /* wgsl */ `
struct P { size: u32, classes: u32, hasIgnore: u32, ignore: f32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> outputs: array<f32>; // [positions, classes]
@group(0) @binding(2) var<storage, read> targets: array<f32>; // [positions] or [positions, classes]
@group(0) @binding(3) var<storage, read> count: array<f32>; // [1]
@group(0) @binding(4) var<storage, read_write> dinputs: array<f32>; // [positions, classes]
${CLIP_WGSL}
${rowMain("size")}
  let q = outputs[i];
  let n = count[0];
${
    indices
      ? `  let label = targets[i / p.classes];
  let hit = f32(i % p.classes) == label && !(p.hasIgnore != 0u && label == p.ignore);
  dinputs[i] = select(0.0, -1.0 / q / n, hit && unclipped(q));`
      : `  dinputs[i] = select(0.0, -targets[i] / q / n, unclipped(q));`
  }
}`;
}

const FORWARD_INDICES = forwardCode(true);
const FORWARD_ROWS = forwardCode(false);
const BACKWARD_INDICES = backwardCode(true);
const BACKWARD_ROWS = backwardCode(false);

// What gpuForward leaves for gpuBackward.
interface GpuCache {
  outputs: GpuTensor; // [batch, …, classes]
  targets: GpuTensor; // [positions] or [batch, …, classes]
  count: GpuTensor; // [1], positions counted in the mean
  indices: boolean;
}

/**
 * Categorical cross-entropy on probabilities (the book's `Loss_CategoricalCrossentropy`),
 * for a model that ends in {@linkcode Softmax}.
 *
 * Shapes: outputs (probabilities) `[batch, classes]`, or `[batch, T, classes]` (any rank
 * ≥ 2: the classes are the last axis); targets class indices shaped like the outputs
 * without their last axis (`[batch]`, `[batch, T]`: a tensor of integer values, or a flat
 * array of all positions), or one-hot rows shaped like the outputs. The value is the mean
 * over every position of `−Σ_j y_j·log(clip(p_j))`, with `clip` to [1e-7, 1 − 1e-7] as the
 * book does, so a probability of 0 costs about 16.1 instead of infinity. With
 * `ignoreIndex`, positions whose target is it are left out of the mean and get a zero
 * gradient; when every position is ignored the value is 0 with a zero gradient.
 *
 * The backward is the derivative of that clipped value: `−y_j / p_j / count` where `p_j`
 * lies inside the clipping range, and 0 where it was clipped (as TensorFlow's clip does),
 * so it never divides by zero. For training a classifier, {@linkcode SoftmaxCrossEntropy}
 * on logits is faster and never saturates.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CategoricalCrossEntropy, Tensor } from "@chainrule/nn";
 *
 * // The book's example: mean of −log 0.7, −log 0.5, −log 0.9.
 * const p = Tensor.from([[0.7, 0.1, 0.2], [0.1, 0.5, 0.4], [0.02, 0.9, 0.08]], { dtype: "float64" });
 * const loss = new CategoricalCrossEntropy();
 * assert.ok(Math.abs(loss.forward(p, [0, 1, 1]) - 0.38506088005216804) < 1e-15);
 * // d/dp of −log 0.7, over a batch of 3.
 * assert.ok(Math.abs(loss.backward().get(0, 0) - -1 / 0.7 / 3) < 1e-15);
 *
 * // The same rows as one sequence [1, 3, 3], the last position ignored.
 * const sequence = new CategoricalCrossEntropy({ ignoreIndex: -100 });
 * const value = sequence.forward(p.reshape([1, 3, 3]), Tensor.from([[0, 1, -100]]));
 * assert.ok(Math.abs(value - -(Math.log(0.7) + Math.log(0.5)) / 2) < 1e-15);
 * ```
 */
export class CategoricalCrossEntropy implements Loss, GpuLoss {
  /** Registry name. */
  readonly kind = "CategoricalCrossEntropy";
  /** The class-index target left out of the loss, if any. */
  readonly ignoreIndex?: number;
  #outputs?: Tensor; // [batch, …, classes], cached by forward for backward
  #targets?: ClassTargets; // [positions] or [positions, classes]
  #count = 0; // positions counted in the mean
  #gpu?: GpuCache; // cached by gpuForward for gpuBackward

  /**
   * Creates the loss.
   *
   * @throws {RangeError} when `ignoreIndex` is not an integer.
   */
  constructor(options: ClassLossOptions = {}) {
    this.ignoreIndex = checkIgnoreIndex("new CategoricalCrossEntropy", options?.ignoreIndex);
  }

  /** Rebuilds the loss from {@linkcode CategoricalCrossEntropy.config}. */
  static fromConfig(config: JsonObject): CategoricalCrossEntropy {
    return new CategoricalCrossEntropy(config as ClassLossOptions);
  }

  /**
   * `outputs` [batch, …, classes] probabilities, `targets` [batch, …] indices or
   * [batch, …, classes] rows → mean loss over the counted positions
   *
   * @throws {TypeError} when the targets' shape does not fit the outputs.
   * @throws {RangeError} when a class index is out of range or not an integer.
   */
  forward(outputs: Tensor, targets: Targets): number {
    const where = "CategoricalCrossEntropy.forward";
    const ignore = this.ignoreIndex;
    const normalized = classTargetsFor(outputs, targets, where, { ignoreIndex: ignore });
    const classes = outputs.shape[outputs.rank - 1];
    const positions = outputs.size / classes;
    const p = outputs.data;
    let total = 0;
    let count = positions;
    if (normalized.kind === "indices") {
      const y = normalized.indices;
      for (let i = 0; i < positions; i++) {
        if (y[i] === ignore) count--;
        else total -= Math.log(clip(p[i * classes + y[i]]));
      }
    } else {
      const y = normalized.rows.data;
      for (let i = 0; i < p.length; i++) if (y[i] !== 0) total -= y[i] * Math.log(clip(p[i]));
    }
    this.#outputs = outputs;
    this.#targets = normalized;
    this.#count = count;
    return count === 0 ? 0 : total / count;
  }

  // dinputs = −y / p / count inside the clipping range, 0 where p was clipped or ignored
  /** → dinputs [batch, …, classes] */
  backward(): Tensor {
    const outputs = this.#outputs;
    const targets = this.#targets;
    if (!outputs || !targets) {
      throw new Error("CategoricalCrossEntropy.backward: call forward first");
    }
    const classes = outputs.shape[outputs.rank - 1];
    const positions = outputs.size / classes;
    const count = this.#count;
    const ignore = this.ignoreIndex;
    const p = outputs.data;
    const dinputs = allocate(outputs.dtype, p.length);
    if (targets.kind === "indices") {
      const y = targets.indices;
      for (let i = 0; i < positions; i++) {
        if (y[i] === ignore) continue;
        const k = i * classes + y[i];
        if (unclipped(p[k])) dinputs[k] = -1 / p[k] / count;
      }
    } else {
      const y = targets.rows.data;
      for (let i = 0; i < p.length; i++) if (unclipped(p[i])) dinputs[i] = -y[i] / p[i] / count;
    }
    return new Tensor(dinputs, outputs.shape);
  }

  /**
   * {@linkcode CategoricalCrossEntropy.forward} on the device: adds the batch's mean loss
   * to `sink`. `targets` are float32 class indices `[positions]` (shaped like the outputs
   * without their last axis, or flat) or rows shaped like `outputs` `[batch, …, classes]`.
   *
   * @throws {TypeError} when the targets' shape does not fit the outputs.
   */
  gpuForward(ctx: GpuContext, outputs: GpuTensor, targets: GpuTensor, sink: GpuSink): void {
    const { positions, classes, indices } = gpuClassBatch(
      outputs,
      targets,
      "CategoricalCrossEntropy.gpuForward",
    );
    const terms = ctx.buffer(this, "terms", [positions]);
    const counted = ctx.buffer(this, "counted", [positions]);
    const count = ctx.buffer(this, "count", [1]);
    const code = indices ? FORWARD_INDICES : FORWARD_ROWS;
    const words = [positions, classes, ...ignoreWords(this.ignoreIndex)];
    const forward = kernel("CategoricalCrossEntropy.forward", code);
    ctx.run(
      this,
      "forward",
      forward,
      [outputs, targets, terms, counted],
      words,
      rowGrid(positions),
    );
    gpuMeanIntoSink(ctx, this, "mean", terms, counted, count, positions, sink);
    this.#gpu = { outputs, targets, count, indices };
  }

  // dinputs = −y / p / count inside the clipping range, 0 where p was clipped or ignored
  /** {@linkcode CategoricalCrossEntropy.backward} on the device: → dinputs [batch, …, classes] */
  gpuBackward(ctx: GpuContext): GpuTensor {
    const cache = this.#gpu;
    if (!cache) throw new Error("CategoricalCrossEntropy.gpuBackward: call gpuForward first");
    const { outputs, targets, count, indices } = cache;
    const classes = outputs.shape[outputs.shape.length - 1];
    const dinputs = ctx.buffer(this, "dinputs", outputs.shape);
    const code = indices ? BACKWARD_INDICES : BACKWARD_ROWS;
    const words = [outputs.size, classes, ...ignoreWords(this.ignoreIndex)];
    const backward = kernel("CategoricalCrossEntropy.backward", code);
    ctx.run(
      this,
      "backward",
      backward,
      [outputs, targets, count, dinputs],
      words,
      rowGrid(outputs.size),
    );
    return dinputs;
  }

  /** `{}`, or `{ ignoreIndex }` */
  config(): JsonObject {
    return this.ignoreIndex === undefined ? {} : { ignoreIndex: this.ignoreIndex };
  }

  /** `CategoricalCrossEntropy()`, `CategoricalCrossEntropy(ignoreIndex=0)` */
  toString(): string {
    const ignore = this.ignoreIndex === undefined ? "" : `ignoreIndex=${this.ignoreIndex}`;
    return `CategoricalCrossEntropy(${ignore})`;
  }
}
