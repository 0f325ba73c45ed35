import { describeKind } from "../core/_describe.ts";
import { expectTensor } from "../core/_checks.ts";
import type { JsonObject } from "../core/json.ts";
import type { ForwardOptions, Layer } from "../core/layer.ts";
import type { Param } from "../core/param.ts";
import { Scratch } from "../core/_scratch.ts";
import { formatShape, Tensor } from "../core/tensor.ts";
import { flatIndex, type GpuContext, type GpuLayer, type GpuTensor, gridFor } from "../core/gpu.ts";
import { kernel } from "../backends/webgpu_ops.ts";
import { checkGpuGradient } from "./_gpu_conv.ts";

/**
 * Global average pooling: the mean of each channel over its whole image,
 * `outputs[n, c] = Σ_{y,x} inputs[n, c, y, x] / (H·W)`, so that a classifier head needs no
 * `Flatten` and works for any image size. PyTorch writes it as `AdaptiveAvgPool2d(1)`
 * followed by `Flatten()`.
 *
 * Shapes: inputs `[batch, channels, H, W]` → outputs `[batch, channels]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { GlobalAvgPool2D, Tensor } from "@chainrule/nn";
 *
 * const pool = new GlobalAvgPool2D();
 * const images = Tensor.from([[[[1, 2], [3, 6]], [[0, 0], [0, 4]]]]); // [1, 2, 2, 2]
 * assert.deepEqual(pool.forward(images).toArray(), [[3, 1]]);
 * assert.deepEqual(pool.backward(Tensor.from([[4, 8]])).toArray(), [[[[1, 1], [1, 1]], [[2, 2], [2, 2]]]]);
 * ```
 */
export class GlobalAvgPool2D implements Layer, GpuLayer {
  /** Registry name. */
  readonly kind = "GlobalAvgPool2D";
  #inputs?: Tensor; // [N, C, H, W], cached by forward for backward
  #training = false;
  #outputs = new Scratch(); // [N, C], reused by training forwards
  #dinputs = new Scratch(); // [N, C, H, W], reused by backward after a training forward
  #gpuInputs?: GpuTensor; // [N, C, H, W], cached by gpuForward for gpuBackward

  /** Rebuilds the layer from its (empty) config. */
  static fromConfig(_config: JsonObject): GlobalAvgPool2D {
    return new GlobalAvgPool2D();
  }

  /**
   * `inputs` [N, C, H, W] → outputs [N, C]; a training forward reuses its buffer.
   *
   * @throws {TypeError} for inputs that are not 4-D.
   */
  forward(inputs: Tensor, options?: ForwardOptions): Tensor {
    const where = "GlobalAvgPool2D.forward";
    expectTensor(inputs, where);
    if (inputs.rank !== 4) {
      throw new TypeError(
        `${where}: inputs must be 4-D [batch, channels, height, width], got shape ${
          formatShape(inputs.shape)
        }`,
      );
    }
    const [batch, channels, height, width] = inputs.shape;
    if (batch === 0 || height * width === 0) {
      throw new RangeError(`${where}: inputs is empty (shape ${formatShape(inputs.shape)})`);
    }
    this.#inputs = inputs;
    this.#training = options?.training === true;
    const shape = [batch, channels];
    const outputs = this.#training
      ? this.#outputs.get(inputs.dtype, shape)
      : Tensor.zeros(shape, { dtype: inputs.dtype });
    const x = inputs.data, y = outputs.data, plane = height * width;
    for (let q = 0; q < batch * channels; q++) {
      let sum = 0;
      for (let i = q * plane, end = i + plane; i < end; i++) sum += x[i];
      y[q] = sum / plane;
    }
    return outputs;
  }

  // dinputs[n, c, y, x] = dvalues[n, c] / (H·W)
  /** `dvalues` [N, C] → dinputs [N, C, H, W] */
  backward(dvalues: Tensor): Tensor {
    const inputs = this.#inputs;
    if (!inputs) throw new Error("GlobalAvgPool2D.backward: call forward first");
    const [batch, channels, height, width] = inputs.shape;
    if (
      !(dvalues instanceof Tensor) || dvalues.dtype !== inputs.dtype || dvalues.rank !== 2 ||
      dvalues.shape[0] !== batch || dvalues.shape[1] !== channels
    ) {
      const got = dvalues instanceof Tensor
        ? `${dvalues.dtype} ${formatShape(dvalues.shape)}`
        : describeKind(dvalues);
      throw new TypeError(
        `GlobalAvgPool2D.backward: dvalues is ${got}, expected ${inputs.dtype} ${
          formatShape([batch, channels])
        } like the last forward's outputs`,
      );
    }
    const dinputs = this.#training
      ? this.#dinputs.get(inputs.dtype, inputs.shape)
      : Tensor.zeros(inputs.shape, { dtype: inputs.dtype });
    const dx = dinputs.data, dv = dvalues.data, plane = height * width;
    for (let q = 0; q < batch * channels; q++) dx.fill(dv[q] / plane, q * plane, (q + 1) * plane);
    return dinputs;
  }

  /**
   * {@linkcode GlobalAvgPool2D.forward} on the device: `inputs` [N, C, H, W] → outputs [N, C].
   *
   * @throws {TypeError} for inputs that are not float32 4-D.
   */
  gpuForward(ctx: GpuContext, inputs: GpuTensor): GpuTensor {
    const where = "GlobalAvgPool2D.gpuForward";
    if (inputs.shape.length !== 4 || inputs.dtype !== "float32" || inputs.size === 0) {
      throw new TypeError(
        `${where}: inputs must be non-empty float32 [batch, channels, height, width], got ${inputs.dtype} ${
          formatShape(inputs.shape)
        }`,
      );
    }
    const [batch, channels, height, width] = inputs.shape;
    const outputs = ctx.buffer(this, "outputs", [batch, channels]);
    const uniforms = [batch * channels, height * width];
    const code = kernel("GlobalAvgPool2D.forward", GLOBAL_AVG_POOL_FORWARD);
    ctx.run(this, "forward", code, [inputs, outputs], uniforms, gridFor(outputs.size));
    this.#gpuInputs = inputs;
    return outputs;
  }

  // dinputs[n, c, y, x] = dvalues[n, c] / (H·W)
  /** {@linkcode GlobalAvgPool2D.backward} on the device: `dvalues` [N, C] → dinputs [N, C, H, W]. */
  gpuBackward(ctx: GpuContext, dvalues: GpuTensor): GpuTensor {
    const inputs = this.#gpuInputs;
    if (!inputs) throw new Error("GlobalAvgPool2D.gpuBackward: call gpuForward first");
    const [batch, channels, height, width] = inputs.shape;
    checkGpuGradient(dvalues, [batch, channels], "GlobalAvgPool2D.gpuBackward");
    const dinputs = ctx.buffer(this, "dinputs", inputs.shape);
    const uniforms = [batch * channels, height * width];
    const code = kernel("GlobalAvgPool2D.backward", GLOBAL_AVG_POOL_BACKWARD);
    ctx.run(this, "backward", code, [dvalues, dinputs], uniforms, gridFor(dinputs.size));
    return dinputs;
  }

  /** None: pooling has no parameters. */
  params(): Param[] {
    return [];
  }

  /** `{}` */
  config(): JsonObject {
    return {};
  }

  /** `GlobalAvgPool2D()` */
  toString(): string {
    return "GlobalAvgPool2D()";
  }
}

// outputs[q] = Σ x[q, :] / plane: one invocation per (sample, channel) plane.
const GLOBAL_AVG_POOL_FORWARD = /* wgsl */ `
struct P { planes: u32, plane: u32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${flatIndex()}
  if (i >= p.planes) { return; }
  var sum = 0.0;
  for (var j = i * p.plane; j < (i + 1u) * p.plane; j++) { sum += x[j]; }
  out[i] = sum / f32(p.plane);
}`;

const GLOBAL_AVG_POOL_BACKWARD = /* wgsl */ `
struct P { planes: u32, plane: u32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> dv: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${flatIndex()}
  if (i >= p.planes * p.plane) { return; }
  dx[i] = dv[i / p.plane] / f32(p.plane);
}`;
