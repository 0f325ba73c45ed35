import { expectLike, expectTensor } from "../core/_checks.ts";
import type { JsonObject } from "../core/json.ts";
import type { Layer } from "../core/layer.ts";
import type { Param } from "../core/param.ts";
import { allocate, Tensor } from "../core/tensor.ts";
import type { GpuContext, GpuLayer, GpuTensor } from "../core/gpu.ts";
import { gpuMap } from "../backends/webgpu_ops.ts";

// σ(x) = 1/(1 + e) for x ≥ 0, else e/(1 + e), with e = exp(−|x|) ≤ 1: no exp overflows.
const SIGMOID =
  "select(exp(-abs(x0)) / (1.0 + exp(-abs(x0))), 1.0 / (1.0 + exp(-abs(x0))), x0 >= 0.0)";

/**
 * The logistic sigmoid, element-wise: `outputs = 1 / (1 + exp(−inputs))` (the book's
 * `Activation_Sigmoid`), the output of a binary classifier with
 * {@linkcode BinaryCrossEntropy}.
 *
 * Negative inputs are computed as `exp(x) / (1 + exp(x))`, so no `exp` ever overflows:
 * `−1000` gives exactly 0 and `1000` exactly 1, never NaN.
 *
 * Shapes: any → the same shape.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Sigmoid, Tensor } from "@chainrule/nn";
 *
 * const sigmoid = new Sigmoid();
 * const out = sigmoid.forward(Tensor.from([[0, -1000, 1000]], { dtype: "float64" }));
 * assert.deepEqual(out.toArray(), [[0.5, 0, 1]]);
 * // σ′(0) = σ(0)·(1 − σ(0)) = 0.25
 * assert.equal(sigmoid.backward(Tensor.from([[1, 1, 1]], { dtype: "float64" })).get(0, 0), 0.25);
 * ```
 */
export class Sigmoid implements Layer, GpuLayer {
  /** Registry name. */
  readonly kind = "Sigmoid";
  #outputs?: Tensor; // same shape as inputs, cached by forward for backward
  #gpuOutputs?: GpuTensor; // same shape as inputs, cached by gpuForward for gpuBackward

  /** Rebuilds the layer from its (empty) config. */
  static fromConfig(_config: JsonObject): Sigmoid {
    return new Sigmoid();
  }

  /** `inputs` [...] → outputs [...] in (0, 1) */
  forward(inputs: Tensor): Tensor {
    expectTensor(inputs, "Sigmoid.forward");
    const x = inputs.data;
    const outputs = allocate(inputs.dtype, x.length);
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      if (v >= 0) {
        outputs[i] = 1 / (1 + Math.exp(-v));
      } else {
        const e = Math.exp(v);
        outputs[i] = e / (1 + e);
      }
    }
    this.#outputs = new Tensor(outputs, inputs.shape);
    return this.#outputs;
  }

  // dinputs = dvalues · σ(x)·(1 − σ(x))
  /** `dvalues` [...] → dinputs [...] */
  backward(dvalues: Tensor): Tensor {
    const outputs = expectLike(dvalues, this.#outputs, "Sigmoid.backward", "outputs");
    const s = outputs.data;
    const dv = dvalues.data;
    const dinputs = allocate(outputs.dtype, s.length);
    for (let i = 0; i < s.length; i++) dinputs[i] = dv[i] * (1 - s[i]) * s[i];
    return new Tensor(dinputs, outputs.shape);
  }

  /** {@linkcode Sigmoid.forward} on the device (the same two branches, with e = exp(−|x|)). */
  gpuForward(ctx: GpuContext, inputs: GpuTensor): GpuTensor {
    const outputs = ctx.buffer(this, "outputs", inputs.shape);
    gpuMap(ctx, this, "forward", SIGMOID, [inputs], outputs, inputs.size);
    this.#gpuOutputs = outputs;
    return outputs;
  }

  // dinputs = dvalues · σ(x)·(1 − σ(x))
  /** {@linkcode Sigmoid.backward} on the device. */
  gpuBackward(ctx: GpuContext, dvalues: GpuTensor): GpuTensor {
    const outputs = this.#gpuOutputs;
    if (!outputs) throw new Error("Sigmoid.gpuBackward: call gpuForward first");
    const dinputs = ctx.buffer(this, "dinputs", outputs.shape);
    const expression = "x1 * (1.0 - x0) * x0";
    gpuMap(ctx, this, "backward", expression, [outputs, dvalues], dinputs, outputs.size);
    return dinputs;
  }

  /** None: sigmoid has no parameters. */
  params(): Param[] {
    return [];
  }

  /** `{}` */
  config(): JsonObject {
    return {};
  }

  /** `Sigmoid()` */
  toString(): string {
    return "Sigmoid()";
  }
}
