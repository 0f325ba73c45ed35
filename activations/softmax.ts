import { expectLike } from "../core/_checks.ts";
import type { JsonObject } from "../core/json.ts";
import type { Layer } from "../core/layer.ts";
import type { Param } from "../core/param.ts";
import { allocate, expectMatrix, type FloatArray, formatShape, Tensor } from "../core/tensor.ts";
import { exp } from "../core/_fast_math.ts";
import { type GpuContext, type GpuLayer, type GpuTensor, gridFor } from "../core/gpu.ts";
import { kernel } from "../backends/webgpu_ops.ts";

/**
 * Row-wise softmax of `x` [batch, classes] into `out`, subtracting each row's max first so
 * that large logits cannot overflow.
 */
export function softmaxRows(x: FloatArray, out: FloatArray, batch: number, classes: number): void {
  if (x instanceof Float32Array && out instanceof Float32Array) {
    softmaxRows32(x, out, batch, classes);
    return;
  }
  for (let i = 0; i < batch; i++) {
    const row = i * classes;
    let max = -Infinity;
    for (let j = 0; j < classes; j++) if (x[row + j] > max) max = x[row + j];
    let sum = 0;
    for (let j = 0; j < classes; j++) {
      const e = Math.exp(x[row + j] - max);
      out[row + j] = e;
      sum += e;
    }
    const inverse = 1 / sum;
    for (let j = 0; j < classes; j++) out[row + j] *= inverse;
  }
}

// float32 rows: the same steps with the range-reduced exp (a few float64 ulps, far below
// float32's rounding, and about twice as fast as Math.exp); float64 keeps Math.exp.
function softmaxRows32(x: Float32Array, out: Float32Array, batch: number, classes: number): void {
  for (let i = 0; i < batch; i++) {
    const row = i * classes, end = row + classes;
    let max = -Infinity;
    for (let j = row; j < end; j++) if (x[j] > max) max = x[j];
    let sum = 0;
    for (let j = row; j < end; j++) {
      const e = exp(x[j] - max);
      out[j] = e;
      sum += e;
    }
    const inverse = 1 / sum;
    for (let j = row; j < end; j++) out[j] *= inverse;
  }
}

/**
 * Turns logits [batch, classes] into probabilities that sum to 1 in each row.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { softmax, Tensor } from "@chainrule/nn";
 *
 * const p = softmax(Tensor.from([[0, 0], [1000, 0]], { dtype: "float64" }));
 * assert.deepEqual(p.toArray(), [[0.5, 0.5], [1, 0]]);
 * ```
 */
export function softmax(logits: Tensor): Tensor {
  const [batch, classes] = expectMatrix(logits, "softmax", "logits");
  const out = allocate(logits.dtype, logits.size);
  softmaxRows(logits.data, out, batch, classes);
  return new Tensor(out, logits.shape);
}

// The GPU kernels: one workgroup of 64 per row (`gridFor(rows, 1)`: folded into y past
// 65535 rows), each invocation striding over the row's classes, the partial maxima and sums
// combined by a tree in workgroup memory: `REDUCE(op)` leaves the row's max or sum in
// `partial[0]`.
const ROW_SIZE = 64;
const REDUCE = (op: string) => /* wgsl */ `
  partial[lid.x] = acc;
  workgroupBarrier();
  for (var width = ${ROW_SIZE / 2}u; width > 0u; width >>= 1u) {
    if (lid.x < width) { partial[lid.x] = ${op}(partial[lid.x], partial[lid.x + width]); }
    workgroupBarrier();
  }`;
const ROW_HEADER = /* wgsl */ `
struct P { rows: u32, classes: u32 };
@group(0) @binding(0) var<uniform> p: P;
var<workgroup> partial: array<f32, ${ROW_SIZE}>;
fn add(a: f32, b: f32) -> f32 { return a + b; }`;
const ROW_MAIN = /* wgsl */ `
@compute @workgroup_size(${ROW_SIZE})
fn main(
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) groups: vec3u,
) {
  let row = wid.x + wid.y * groups.x;
  if (row >= p.rows) { return; }
  let base = row * p.classes;`;

// s_j = exp(x_j − max)/Σ_k exp(x_k − max), per row
const SOFTMAX_FORWARD = /* wgsl */ `${ROW_HEADER}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
${ROW_MAIN}
  var acc = -0x1.fffffep+127f; // the lowest float32 (Chromium refuses a literal that rounds)
  for (var j = lid.x; j < p.classes; j += ${ROW_SIZE}u) { acc = max(acc, x[base + j]); }
  ${REDUCE("max")}
  let rowMax = partial[0];
  workgroupBarrier();
  acc = 0.0;
  for (var j = lid.x; j < p.classes; j += ${ROW_SIZE}u) {
    let e = exp(x[base + j] - rowMax);
    out[base + j] = e;
    acc += e;
  }
  ${REDUCE("add")}
  let inverse = 1.0 / partial[0];
  for (var j = lid.x; j < p.classes; j += ${ROW_SIZE}u) { out[base + j] *= inverse; }
}`;

// dinputs = s ⊙ (dvalues − dvalues·s), per row
const SOFTMAX_BACKWARD = /* wgsl */ `${ROW_HEADER}
@group(0) @binding(1) var<storage, read> s: array<f32>;
@group(0) @binding(2) var<storage, read> dvalues: array<f32>;
@group(0) @binding(3) var<storage, read_write> dinputs: array<f32>;
${ROW_MAIN}
  var acc = 0.0;
  for (var j = lid.x; j < p.classes; j += ${ROW_SIZE}u) { acc += dvalues[base + j] * s[base + j]; }
  ${REDUCE("add")}
  let dot = partial[0];
  for (var j = lid.x; j < p.classes; j += ${ROW_SIZE}u) {
    dinputs[base + j] = s[base + j] * (dvalues[base + j] - dot);
  }
}`;

/**
 * Softmax as a standalone layer: each row of logits becomes probabilities that sum to 1,
 * `s_j = exp(x_j − max) / Σ_k exp(x_k − max)` (the book's `Activation_Softmax`).
 *
 * Use it before {@linkcode CategoricalCrossEntropy} (or any loss on probabilities); for
 * training a classifier, {@linkcode SoftmaxCrossEntropy} on logits is faster and exact.
 * Subtracting each row's max keeps large logits finite: `[1000, −1000]` gives `[1, 0]`.
 *
 * Shapes: inputs `[batch, classes]` → outputs `[batch, classes]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Softmax, Tensor } from "@chainrule/nn";
 *
 * const softmax = new Softmax();
 * const p = softmax.forward(Tensor.from([[1000, -1000], [0, 0]], { dtype: "float64" }));
 * assert.deepEqual(p.toArray(), [[1, 0], [0.5, 0.5]]);
 * // Equal upstream gradients change nothing: the outputs always sum to 1.
 * const d = softmax.backward(Tensor.from([[3, 3], [3, 3]], { dtype: "float64" }));
 * assert.deepEqual(d.toArray(), [[0, 0], [0, 0]]);
 * ```
 */
export class Softmax implements Layer, GpuLayer {
  /** Registry name. */
  readonly kind = "Softmax";
  #outputs?: Tensor; // [batch, classes], cached by forward for backward
  #gpuOutputs?: GpuTensor; // [batch, classes], cached by gpuForward for gpuBackward

  /** Rebuilds the layer from its (empty) config. */
  static fromConfig(_config: JsonObject): Softmax {
    return new Softmax();
  }

  /** `inputs` [batch, classes] logits → outputs [batch, classes] probabilities */
  forward(inputs: Tensor): Tensor {
    const [batch, classes] = expectMatrix(inputs, "Softmax.forward", "inputs");
    const outputs = allocate(inputs.dtype, inputs.size);
    softmaxRows(inputs.data, outputs, batch, classes);
    this.#outputs = new Tensor(outputs, inputs.shape);
    return this.#outputs;
  }

  // The full Jacobian-vector product, row by row: J = diag(s) − s·sᵀ, so
  // dinputs = J·dvalues = s ⊙ (dvalues − dvalues·s), without forming J.
  /** `dvalues` [batch, classes] → dinputs [batch, classes] */
  backward(dvalues: Tensor): Tensor {
    const outputs = expectLike(dvalues, this.#outputs, "Softmax.backward", "outputs");
    const [batch, classes] = outputs.shape;
    const s = outputs.data;
    const dv = dvalues.data;
    const dinputs = allocate(outputs.dtype, s.length);
    for (let i = 0; i < batch; i++) {
      const row = i * classes;
      let dot = 0;
      for (let j = 0; j < classes; j++) dot += dv[row + j] * s[row + j];
      for (let j = 0; j < classes; j++) dinputs[row + j] = s[row + j] * (dv[row + j] - dot);
    }
    return new Tensor(dinputs, outputs.shape);
  }

  /**
   * {@linkcode Softmax.forward} on the device.
   *
   * @throws {TypeError} for inputs that are not 2-D; {RangeError} for an empty batch.
   */
  gpuForward(ctx: GpuContext, inputs: GpuTensor): GpuTensor {
    const shape = inputs.shape;
    if (shape.length !== 2) {
      throw new TypeError(
        `Softmax.gpuForward: inputs must be 2-D [batch, features], got shape ${formatShape(shape)}`,
      );
    }
    const [batch, classes] = shape;
    if (batch === 0) {
      throw new RangeError(
        `Softmax.gpuForward: inputs is an empty batch (shape ${formatShape(shape)})`,
      );
    }
    const outputs = ctx.buffer(this, "outputs", shape);
    const code = kernel("Softmax.forward", SOFTMAX_FORWARD);
    ctx.run(this, "forward", code, [inputs, outputs], [batch, classes], gridFor(batch, 1));
    this.#gpuOutputs = outputs;
    return outputs;
  }

  // dinputs = J·dvalues = s ⊙ (dvalues − dvalues·s), row by row
  /** {@linkcode Softmax.backward} on the device. */
  gpuBackward(ctx: GpuContext, dvalues: GpuTensor): GpuTensor {
    const outputs = this.#gpuOutputs;
    if (!outputs) throw new Error("Softmax.gpuBackward: call gpuForward first");
    const [batch, classes] = outputs.shape;
    const dinputs = ctx.buffer(this, "dinputs", outputs.shape);
    const code = kernel("Softmax.backward", SOFTMAX_BACKWARD);
    const tensors = [outputs, dvalues, dinputs];
    ctx.run(this, "backward", code, tensors, [batch, classes], gridFor(batch, 1));
    return dinputs;
  }

  /** None: softmax has no parameters. */
  params(): Param[] {
    return [];
  }

  /** `{}` */
  config(): JsonObject {
    return {};
  }

  /** `Softmax()` */
  toString(): string {
    return "Softmax()";
  }
}
