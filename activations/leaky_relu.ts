import { describe } from "../core/_describe.ts";
import { expectLike, expectTensor } from "../core/_checks.ts";
import type { JsonObject } from "../core/json.ts";
import type { Layer } from "../core/layer.ts";
import type { Param } from "../core/param.ts";
import { allocate, Tensor } from "../core/tensor.ts";
import type { GpuContext, GpuLayer, GpuTensor } from "../core/gpu.ts";
import { gpuMap } from "../backends/webgpu_ops.ts";

/** Options of {@linkcode LeakyReLU}. */
export interface LeakyReLUOptions {
  /** Slope for negative inputs; 0.01 when omitted (PyTorch's and Keras's default). */
  slope?: number;
}

/**
 * Leaky rectified linear unit, element-wise: `outputs = inputs` where `inputs > 0`, else
 * `slope · inputs`, so negative units still pass a little gradient.
 *
 * Shapes: any → the same shape.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LeakyReLU, Tensor } from "@chainrule/nn";
 *
 * const leaky = new LeakyReLU({ slope: 0.5 });
 * assert.deepEqual(leaky.forward(Tensor.from([[-2, 3]])).toArray(), [[-1, 3]]);
 * assert.deepEqual(leaky.backward(Tensor.from([[4, 4]])).toArray(), [[2, 4]]);
 * ```
 */
export class LeakyReLU implements Layer, GpuLayer {
  /** Registry name. */
  readonly kind = "LeakyReLU";
  /** Slope for negative inputs. */
  readonly slope: number;
  #inputs?: Tensor; // same shape as outputs, cached by forward for backward
  #gpuInputs?: GpuTensor; // same shape as outputs, cached by gpuForward for gpuBackward

  /**
   * Creates the layer.
   *
   * @throws {RangeError} when `slope` is not a finite number.
   */
  constructor(options: LeakyReLUOptions = {}) {
    const slope = options.slope ?? 0.01;
    if (typeof slope !== "number" || !Number.isFinite(slope)) {
      throw new RangeError(`new LeakyReLU: slope must be a finite number, got ${describe(slope)}`);
    }
    this.slope = slope;
  }

  /** Rebuilds the layer from {@linkcode LeakyReLU.config}. */
  static fromConfig(config: JsonObject): LeakyReLU {
    return new LeakyReLU(config as LeakyReLUOptions);
  }

  /** `inputs` [...] → outputs [...] */
  forward(inputs: Tensor): Tensor {
    expectTensor(inputs, "LeakyReLU.forward");
    this.#inputs = inputs;
    const slope = this.slope;
    const x = inputs.data;
    const outputs = allocate(inputs.dtype, x.length);
    for (let i = 0; i < x.length; i++) outputs[i] = x[i] > 0 ? x[i] : slope * x[i];
    return new Tensor(outputs, inputs.shape);
  }

  // dinputs = dvalues where inputs > 0, else slope·dvalues (the negative side at the kink)
  /** `dvalues` [...] → dinputs [...] */
  backward(dvalues: Tensor): Tensor {
    const inputs = expectLike(dvalues, this.#inputs, "LeakyReLU.backward");
    const slope = this.slope;
    const x = inputs.data;
    const dv = dvalues.data;
    const dinputs = allocate(inputs.dtype, x.length);
    for (let i = 0; i < x.length; i++) dinputs[i] = x[i] > 0 ? dv[i] : slope * dv[i];
    return new Tensor(dinputs, inputs.shape);
  }

  /** {@linkcode LeakyReLU.forward} on the device. */
  gpuForward(ctx: GpuContext, inputs: GpuTensor): GpuTensor {
    const outputs = ctx.buffer(this, "outputs", inputs.shape);
    const expression = "select(s0 * x0, x0, x0 > 0.0)";
    gpuMap(ctx, this, "forward", expression, [inputs], outputs, inputs.size, {
      scalars: [this.slope],
    });
    this.#gpuInputs = inputs;
    return outputs;
  }

  // dinputs = dvalues where inputs > 0, else slope·dvalues
  /** {@linkcode LeakyReLU.backward} on the device. */
  gpuBackward(ctx: GpuContext, dvalues: GpuTensor): GpuTensor {
    const inputs = this.#gpuInputs;
    if (!inputs) throw new Error("LeakyReLU.gpuBackward: call gpuForward first");
    const dinputs = ctx.buffer(this, "dinputs", inputs.shape);
    const expression = "select(s0 * x1, x1, x0 > 0.0)";
    gpuMap(ctx, this, "backward", expression, [inputs, dvalues], dinputs, inputs.size, {
      scalars: [this.slope],
    });
    return dinputs;
  }

  /** None: the slope is fixed, not trained. */
  params(): Param[] {
    return [];
  }

  /** `{ slope }` */
  config(): JsonObject {
    return { slope: this.slope };
  }

  /** `LeakyReLU(slope=0.01)` */
  toString(): string {
    return `LeakyReLU(slope=${this.slope})`;
  }
}
