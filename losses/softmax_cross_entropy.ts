import type { JsonObject } from "../core/json.ts";
import type { Loss, Targets } from "../core/loss.ts";
import { softmaxRows } from "../activations/softmax.ts";
import { Scratch } from "../core/_scratch.ts";
import { checkIgnoreIndex, type ClassTargets, classTargetsFor } from "./_targets.ts";
import type { Tensor } from "../core/tensor.ts";
import { clip, CLIP_WGSL } from "./_clip.ts";
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

// The book clips probabilities before the log in the value only: the fused backward
// (softmax − onehot) is the derivative of the unclipped loss.
function clippedLog(p: number): number {
  return Math.log(clip(p));
}

// Per position: probabilities = softmax(logits) (the row's max subtracted, times 1/sum as
// softmaxRows does); terms = −log(clip(p_y)), or −Σ_j y_j·log(clip(p_j)) for rows;
// counted = 1, or 0 (and terms 0) where the target is the ignoreIndex.
function forwardCode(indices: boolean): string {
  return /* wgsl */ `
struct P { positions: u32, classes: u32, hasIgnore: u32, ignore: f32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> logits: array<f32>; // [positions, classes]
@group(0) @binding(2) var<storage, read> targets: array<f32>; // [positions] or [positions, classes]
@group(0) @binding(3) var<storage, read_write> probabilities: array<f32>; // [positions, classes]
@group(0) @binding(4) var<storage, read_write> terms: array<f32>; // [positions]
@group(0) @binding(5) var<storage, read_write> counted: array<f32>; // [positions]
${CLIP_WGSL}
${rowMain("positions")}
  let row = i * p.classes;
  let end = row + p.classes;
  // -inf, so that a NaN logit is skipped as on the CPU; through a let, since a constant
  // expression must fit in f32 (Chromium's compiler refuses bitcast<f32>(0xff800000u)).
  let negativeInfinity = 0xff800000u;
  var top = bitcast<f32>(negativeInfinity);
  for (var j = row; j < end; j++) { if (logits[j] > top) { top = logits[j]; } }
  var sum = 0.0;
  for (var j = row; j < end; j++) { sum += exp(logits[j] - top); }
  let inverse = 1.0 / sum;
  for (var j = row; j < end; j++) { probabilities[j] = exp(logits[j] - top) * inverse; }
${crossEntropyTerms(indices, "probabilities")}
}`;
}

// dlogits = (softmax − onehot) / count, 0 at ignored positions (and when count is 0).
function backwardCode(indices: boolean): string {
  return /* wgsl */ `
struct P { size: u32, classes: u32, hasIgnore: u32, ignore: f32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> probabilities: array<f32>; // [positions, classes]
@group(0) @binding(2) var<storage, read> targets: array<f32>; // [positions] or [positions, classes]
@group(0) @binding(3) var<storage, read> count: array<f32>; // [1]
@group(0) @binding(4) var<storage, read_write> dinputs: array<f32>; // [positions, classes]
${rowMain("size")}
  let n = count[0];
${
    indices
      ? `  let label = targets[i / p.classes];
  let hit = select(0.0, 1.0, f32(i % p.classes) == label);
  let ignored = p.hasIgnore != 0u && label == p.ignore;
  dinputs[i] = select((probabilities[i] - hit) / n, 0.0, ignored || n == 0.0);`
      : `  dinputs[i] = select((probabilities[i] - targets[i]) / n, 0.0, n == 0.0);`
  }
}`;
}

const FORWARD_INDICES = forwardCode(true);
const FORWARD_ROWS = forwardCode(false);
const BACKWARD_INDICES = backwardCode(true);
const BACKWARD_ROWS = backwardCode(false);

// What gpuForward leaves for gpuBackward.
interface GpuCache {
  probabilities: GpuTensor; // [batch, …, classes]
  targets: GpuTensor; // [positions] or [batch, …, classes]
  count: GpuTensor; // [1], positions counted in the mean
  indices: boolean;
}

/** Options of {@linkcode SoftmaxCrossEntropy} and {@linkcode CategoricalCrossEntropy}. */
export interface ClassLossOptions {
  /**
   * A class-index target that marks a position to leave out (PyTorch's `ignore_index`,
   * e.g. the padding id): it adds nothing to the loss, is not counted in the mean, and gets
   * a zero gradient. Any integer, in range or not (PyTorch's default is −100); none when
   * omitted. It does not apply to one-hot targets.
   */
  ignoreIndex?: number;
}

/**
 * Softmax followed by categorical cross-entropy, fused, on logits: the book's
 * `Activation_Softmax_Loss_CategoricalCrossentropy` (PyTorch's `CrossEntropyLoss`).
 *
 * Shapes: outputs (logits) `[batch, classes]`, or `[batch, T, classes]` (any rank ≥ 2: the
 * classes are the last axis); targets class indices shaped like the outputs without their
 * last axis (`[batch]`, `[batch, T]`: a tensor of integer values, or a flat array of all
 * positions), or one-hot (probability) rows shaped like the outputs. A rank-2 targets
 * tensor is read as one-hot rows for `[batch, classes]` outputs and as class indices for
 * `[batch, T, classes]` outputs.
 *
 * The value is the mean over every position (`batch·T` of them) of `−Σ_j y_j·log p_j`, as
 * `F.cross_entropy(out.reshape(-1, C), y.reshape(-1))`, with `p` clipped to
 * [1e-7, 1 − 1e-7] as the book does; the softmax subtracts each row's max, so large logits
 * are safe. With `ignoreIndex`, positions whose target is it are left out of the mean and
 * get a zero gradient; when every position is ignored the value is 0 with a zero gradient
 * (where PyTorch returns NaN).
 *
 * The loss reuses its buffers from one batch to the next: the tensor `backward()` returns
 * is valid until the next `backward()`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SoftmaxCrossEntropy, Tensor } from "@chainrule/nn";
 *
 * const loss = new SoftmaxCrossEntropy();
 * const value = loss.forward(Tensor.from([[0, 0, 0]], { dtype: "float64" }), [2]);
 * assert.ok(Math.abs(value - Math.log(3)) < 1e-12);
 * const d = loss.backward().toArray<number[][]>();
 * assert.ok(Math.abs(d[0][2] - (1 / 3 - 1)) < 1e-12);
 *
 * // A sequence [batch 1, T 2, classes 3] whose second position is padding (id 0).
 * const padded = new SoftmaxCrossEntropy({ ignoreIndex: 0 });
 * const logits = Tensor.from([[[0, 0, 0], [5, 1, 2]]], { dtype: "float64" });
 * assert.ok(Math.abs(padded.forward(logits, Tensor.from([[2, 0]])) - Math.log(3)) < 1e-12);
 * assert.deepEqual(padded.backward().toArray<number[][][]>()[0][1], [0, 0, 0]);
 * ```
 */
export class SoftmaxCrossEntropy implements Loss, GpuLoss {
  /** Registry name. */
  readonly kind = "SoftmaxCrossEntropy";
  /** The class-index target left out of the loss, if any. */
  readonly ignoreIndex?: number;
  #probabilities?: Tensor; // [batch, …, classes], cached by forward for backward
  #targets?: ClassTargets; // [positions] or [positions, classes]
  #count = 0; // positions counted in the mean
  #scratch = new Scratch(); // probabilities [batch, …, classes]
  #dinputs = new Scratch(); // [batch, …, classes]
  #indices?: Int32Array; // [positions], reused for class-index targets
  #gpu?: GpuCache; // cached by gpuForward for gpuBackward

  /**
   * Creates the loss.
   *
   * @throws {RangeError} when `ignoreIndex` is not an integer.
   */
  constructor(options: ClassLossOptions = {}) {
    this.ignoreIndex = checkIgnoreIndex("new SoftmaxCrossEntropy", options?.ignoreIndex);
  }

  /** Rebuilds the loss from {@linkcode SoftmaxCrossEntropy.config}. */
  static fromConfig(config: JsonObject): SoftmaxCrossEntropy {
    return new SoftmaxCrossEntropy(config as ClassLossOptions);
  }

  /**
   * `outputs` [batch, …, classes] logits, `targets` [batch, …] indices or
   * [batch, …, classes] rows → mean loss over the counted positions
   *
   * @throws {TypeError} when the targets' shape does not fit the outputs.
   * @throws {RangeError} when a class index is out of range or not an integer.
   */
  forward(outputs: Tensor, targets: Targets): number {
    const where = "SoftmaxCrossEntropy.forward";
    const ignore = this.ignoreIndex;
    const normalized = classTargetsFor(outputs, targets, where, {
      ignoreIndex: ignore,
      reuse: this.#indices,
    });
    const classes = outputs.shape[outputs.rank - 1];
    const positions = outputs.size / classes;
    if (normalized.kind === "indices") this.#indices = normalized.indices;
    const probabilities = this.#scratch.get(outputs.dtype, outputs.shape);
    const p = probabilities.data;
    softmaxRows(outputs.data, p, positions, classes);
    let total = 0;
    let count = positions;
    if (normalized.kind === "indices") {
      const y = normalized.indices;
      for (let i = 0; i < positions; i++) {
        if (y[i] === ignore) count--;
        else total -= clippedLog(p[i * classes + y[i]]);
      }
    } else {
      const y = normalized.rows.data;
      for (let i = 0; i < p.length; i++) if (y[i] !== 0) total -= y[i] * clippedLog(p[i]);
    }
    this.#probabilities = probabilities;
    this.#targets = normalized;
    this.#count = count;
    return count === 0 ? 0 : total / count;
  }

  // dlogits = (softmax − onehot) / count, 0 at ignored positions
  /** → dinputs [batch, …, classes] */
  backward(): Tensor {
    const probabilities = this.#probabilities;
    const targets = this.#targets;
    if (!probabilities || !targets) {
      throw new Error("SoftmaxCrossEntropy.backward: call forward first");
    }
    const classes = probabilities.shape[probabilities.rank - 1];
    const positions = probabilities.size / classes;
    const count = this.#count;
    const ignore = this.ignoreIndex;
    const p = probabilities.data;
    const gradient = this.#dinputs.get(probabilities.dtype, probabilities.shape);
    const dinputs = gradient.data;
    if (targets.kind === "indices") {
      const y = targets.indices;
      dinputs.set(p);
      for (let i = 0; i < positions; i++) {
        const row = i * classes;
        if (y[i] === ignore) dinputs.fill(0, row, row + classes);
        else dinputs[row + y[i]] -= 1;
      }
    } else {
      const y = targets.rows.data;
      for (let i = 0; i < p.length; i++) dinputs[i] = p[i] - y[i];
    }
    // Every position ignored: the rows are already 0, and 0 / 0 would be NaN.
    if (count === 0) return gradient;
    // Divides rather than multiplying by 1/count, as the book does, so float64 runs match it bit for bit.
    for (let i = 0; i < dinputs.length; i++) dinputs[i] /= count;
    return gradient;
  }

  /**
   * {@linkcode SoftmaxCrossEntropy.forward} on the device: adds the batch's mean loss to
   * `sink`. `targets` are float32 class indices `[positions]` (shaped like the outputs
   * without their last axis, or flat) or rows shaped like `outputs` `[batch, …, classes]`.
   *
   * @throws {TypeError} when the targets' shape does not fit the outputs.
   */
  gpuForward(ctx: GpuContext, outputs: GpuTensor, targets: GpuTensor, sink: GpuSink): void {
    const { positions, classes, indices } = gpuClassBatch(
      outputs,
      targets,
      "SoftmaxCrossEntropy.gpuForward",
    );
    const probabilities = ctx.buffer(this, "probabilities", outputs.shape);
    const terms = ctx.buffer(this, "terms", [positions]);
    const counted = ctx.buffer(this, "counted", [positions]);
    const count = ctx.buffer(this, "count", [1]);
    const code = indices ? FORWARD_INDICES : FORWARD_ROWS;
    const tensors = [outputs, targets, probabilities, terms, counted];
    const words = [positions, classes, ...ignoreWords(this.ignoreIndex)];
    const forward = kernel("SoftmaxCrossEntropy.forward", code);
    ctx.run(this, "forward", forward, tensors, words, rowGrid(positions));
    gpuMeanIntoSink(ctx, this, "mean", terms, counted, count, positions, sink);
    this.#gpu = { probabilities, targets, count, indices };
  }

  // dlogits = (softmax − onehot) / count, 0 at ignored positions
  /** {@linkcode SoftmaxCrossEntropy.backward} on the device: → dinputs [batch, …, classes] */
  gpuBackward(ctx: GpuContext): GpuTensor {
    const cache = this.#gpu;
    if (!cache) throw new Error("SoftmaxCrossEntropy.gpuBackward: call gpuForward first");
    const { probabilities, targets, count, indices } = cache;
    const classes = probabilities.shape[probabilities.shape.length - 1];
    const dinputs = ctx.buffer(this, "dinputs", probabilities.shape);
    const code = indices ? BACKWARD_INDICES : BACKWARD_ROWS;
    const tensors = [probabilities, targets, count, dinputs];
    const words = [probabilities.size, classes, ...ignoreWords(this.ignoreIndex)];
    const backward = kernel("SoftmaxCrossEntropy.backward", code);
    ctx.run(this, "backward", backward, tensors, words, rowGrid(probabilities.size));
    return dinputs;
  }

  /** `{}`, or `{ ignoreIndex }` */
  config(): JsonObject {
    return this.ignoreIndex === undefined ? {} : { ignoreIndex: this.ignoreIndex };
  }

  /** `SoftmaxCrossEntropy()`, `SoftmaxCrossEntropy(ignoreIndex=0)` */
  toString(): string {
    const ignore = this.ignoreIndex === undefined ? "" : `ignoreIndex=${this.ignoreIndex}`;
    return `SoftmaxCrossEntropy(${ignore})`;
  }
}
