import { getBackend } from "../backends/selection.ts";
import { expectLike, expectTensor } from "../core/_checks.ts";
import type { JsonObject } from "../core/json.ts";
import type { BackwardOptions, ForwardOptions, Layer } from "../core/layer.ts";
import type { Param } from "../core/param.ts";
import { Scratch } from "../core/_scratch.ts";
import { Tensor } from "../core/tensor.ts";
import type { GpuContext, GpuLayer, GpuTensor } from "../core/gpu.ts";
import { gpuMap } from "../backends/webgpu_ops.ts";

/**
 * Rectified linear unit: `outputs = max(0, inputs)`, element-wise.
 *
 * Shapes: any → the same shape.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ReLU, Tensor } from "@chainrule/nn";
 *
 * const relu = new ReLU();
 * assert.deepEqual(relu.forward(Tensor.from([[-1, 2]])).toArray(), [[0, 2]]);
 * assert.deepEqual(relu.backward(Tensor.from([[5, 5]])).toArray(), [[0, 5]]);
 * ```
 */
export class ReLU implements Layer, GpuLayer {
  /** Registry name. */
  readonly kind = "ReLU";
  /** True: writes its outputs over its inputs, and d(inputs) over dvalues, where offered. */
  readonly writesInPlace: boolean = true;
  #inputs?: Tensor; // same shape as outputs, cached by forward for backward
  #training = false; // whether the cached forward was a training one
  #outputs = new Scratch(); // reused by training forwards
  #dinputs = new Scratch(); // reused by backward after a training forward
  #gpuInputs?: GpuTensor; // same shape as outputs, cached by gpuForward for gpuBackward

  /** Rebuilds the layer from its (empty) config. */
  static fromConfig(_config: JsonObject): ReLU {
    return new ReLU();
  }

  /** `inputs` [...] → outputs [...]; a training forward reuses its output buffer. */
  forward(inputs: Tensor, options?: ForwardOptions): Tensor {
    expectTensor(inputs, "ReLU.forward");
    this.#inputs = inputs;
    this.#training = options?.training === true;
    const backend = getBackend();
    // Written over inputs nobody else reads: backward's mask is the same (x > 0 ⇔ relu(x) > 0).
    const outputs = this.#training && options?.reuseInputs
      ? inputs
      : this.#training
      ? this.#outputs.get(inputs.dtype, inputs.shape, backend)
      : Tensor.zeros(inputs.shape, { dtype: inputs.dtype });
    if (backend.relu) backend.relu(inputs.data, outputs.data);
    else {
      const x = inputs.data;
      const out = outputs.data;
      for (let i = 0; i < x.length; i++) out[i] = x[i] > 0 ? x[i] : 0;
    }
    return outputs;
  }

  // dinputs = dvalues where inputs > 0, else 0 (the book's choice at the kink)
  /** `dvalues` [...] → dinputs [...] */
  backward(dvalues: Tensor, options?: BackwardOptions): Tensor {
    const inputs = expectLike(dvalues, this.#inputs, "ReLU.backward");
    const backend = getBackend();
    // Each element is read before it is written: dinputs may lie over dvalues.
    const dinputs = options?.reuseDvalues
      ? dvalues
      : this.#training
      ? this.#dinputs.get(inputs.dtype, inputs.shape, backend)
      : Tensor.zeros(inputs.shape, { dtype: inputs.dtype });
    if (backend.reluBackward) backend.reluBackward(inputs.data, dvalues.data, dinputs.data);
    else {
      const x = inputs.data;
      const dv = dvalues.data;
      const d = dinputs.data;
      for (let i = 0; i < x.length; i++) d[i] = x[i] > 0 ? dv[i] : 0;
    }
    return dinputs;
  }

  /** {@linkcode ReLU.forward} on the device. */
  gpuForward(ctx: GpuContext, inputs: GpuTensor): GpuTensor {
    const outputs = ctx.buffer(this, "outputs", inputs.shape);
    gpuMap(ctx, this, "forward", "max(x0, 0.0)", [inputs], outputs, inputs.size);
    this.#gpuInputs = inputs;
    return outputs;
  }

  // dinputs = dvalues where inputs > 0, else 0
  /** {@linkcode ReLU.backward} on the device. */
  gpuBackward(ctx: GpuContext, dvalues: GpuTensor): GpuTensor {
    const inputs = this.#gpuInputs;
    if (!inputs) throw new Error("ReLU.gpuBackward: call gpuForward first");
    const dinputs = ctx.buffer(this, "dinputs", inputs.shape);
    const expression = "select(0.0, x1, x0 > 0.0)";
    gpuMap(ctx, this, "backward", expression, [inputs, dvalues], dinputs, inputs.size);
    return dinputs;
  }

  /** None: ReLU has no parameters. */
  params(): Param[] {
    return [];
  }

  /** `{}` */
  config(): JsonObject {
    return {};
  }

  /** `ReLU()` */
  toString(): string {
    return "ReLU()";
  }
}
