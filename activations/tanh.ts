import { expectLike, expectTensor } from "../core/_checks.ts";
import type { JsonObject } from "../core/json.ts";
import type { Layer } from "../core/layer.ts";
import type { Param } from "../core/param.ts";
import { allocate, Tensor } from "../core/tensor.ts";
import { flatIndex, type GpuContext, type GpuLayer, type GpuTensor, gridFor } from "../core/gpu.ts";
import { gpuMap, kernel } from "../backends/webgpu_ops.ts";

// tanh(x) in float32 without the builtin (whose accuracy varies by driver, and which some
// compute as (e^2x − 1)/(e^2x + 1), NaN past |x| ≈ 44): for |x| < 1/4 its Taylor series to
// x⁹ (the next term is under 1e−8 relative), else sign(x)·(1 − e)/(1 + e) with
// e = exp(−2|x|) ≤ 1, which never overflows and gives ±1 for large |x|.
const TANH_FORWARD = /* wgsl */ `
struct P { count: u32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${flatIndex()}
  if (i >= p.count) { return; }
  let v = x[i];
  let a = abs(v);
  let v2 = v * v;
  // x − x³/3 + 2x⁵/15 − 17x⁷/315 + 62x⁹/2835
  let series = v * (1.0 + v2 * (-0.33333333 + v2 * (0.13333333 +
    v2 * (-0.053968254 + v2 * 0.021869488))));
  let e = exp(-2.0 * a);
  out[i] = select(sign(v) * (1.0 - e) / (1.0 + e), series, a < 0.25);
}`;

/**
 * Hyperbolic tangent, element-wise: `outputs = tanh(inputs)`, in (−1, 1).
 *
 * Shapes: any → the same shape.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Tanh, Tensor } from "@chainrule/nn";
 *
 * const tanh = new Tanh();
 * assert.deepEqual(tanh.forward(Tensor.from([[0, 1000]], { dtype: "float64" })).toArray(), [[0, 1]]);
 * // tanh′(0) = 1 − tanh(0)² = 1
 * assert.deepEqual(tanh.backward(Tensor.from([[2, 2]], { dtype: "float64" })).toArray(), [[2, 0]]);
 * ```
 */
export class Tanh implements Layer, GpuLayer {
  /** Registry name. */
  readonly kind = "Tanh";
  #outputs?: Tensor; // same shape as inputs, cached by forward for backward
  #gpuOutputs?: GpuTensor; // same shape as inputs, cached by gpuForward for gpuBackward

  /** Rebuilds the layer from its (empty) config. */
  static fromConfig(_config: JsonObject): Tanh {
    return new Tanh();
  }

  /** `inputs` [...] → outputs [...] in (−1, 1) */
  forward(inputs: Tensor): Tensor {
    expectTensor(inputs, "Tanh.forward");
    const x = inputs.data;
    const outputs = allocate(inputs.dtype, x.length);
    for (let i = 0; i < x.length; i++) outputs[i] = Math.tanh(x[i]);
    this.#outputs = new Tensor(outputs, inputs.shape);
    return this.#outputs;
  }

  // dinputs = dvalues · (1 − tanh(x)²)
  /** `dvalues` [...] → dinputs [...] */
  backward(dvalues: Tensor): Tensor {
    const outputs = expectLike(dvalues, this.#outputs, "Tanh.backward", "outputs");
    const t = outputs.data;
    const dv = dvalues.data;
    const dinputs = allocate(outputs.dtype, t.length);
    for (let i = 0; i < t.length; i++) dinputs[i] = dv[i] * (1 - t[i] * t[i]);
    return new Tensor(dinputs, outputs.shape);
  }

  /** {@linkcode Tanh.forward} on the device. */
  gpuForward(ctx: GpuContext, inputs: GpuTensor): GpuTensor {
    const outputs = ctx.buffer(this, "outputs", inputs.shape);
    const code = kernel("Tanh.forward", TANH_FORWARD);
    ctx.run(this, "forward", code, [inputs, outputs], [inputs.size], gridFor(inputs.size));
    this.#gpuOutputs = outputs;
    return outputs;
  }

  // dinputs = dvalues · (1 − tanh(x)²)
  /** {@linkcode Tanh.backward} on the device. */
  gpuBackward(ctx: GpuContext, dvalues: GpuTensor): GpuTensor {
    const outputs = this.#gpuOutputs;
    if (!outputs) throw new Error("Tanh.gpuBackward: call gpuForward first");
    const dinputs = ctx.buffer(this, "dinputs", outputs.shape);
    const expression = "x1 * (1.0 - x0 * x0)";
    gpuMap(ctx, this, "backward", expression, [outputs, dvalues], dinputs, outputs.size);
    return dinputs;
  }

  /** None: tanh has no parameters. */
  params(): Param[] {
    return [];
  }

  /** `{}` */
  config(): JsonObject {
    return {};
  }

  /** `Tanh()` */
  toString(): string {
    return "Tanh()";
  }
}
