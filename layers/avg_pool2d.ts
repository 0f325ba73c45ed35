import type { JsonObject } from "../core/json.ts";
import type { ForwardOptions, Layer } from "../core/layer.ts";
import type { Param } from "../core/param.ts";
import { Scratch } from "../core/_scratch.ts";
import { type FloatArray, Tensor } from "../core/tensor.ts";
import { flatIndex, type GpuContext, type GpuLayer, type GpuTensor, gridFor } from "../core/gpu.ts";
import { kernel } from "../backends/webgpu_ops.ts";
import { checkGpuGradient, gpuImages, POOL_GEOMETRY, poolWords } from "./_gpu_conv.ts";
import {
  checkImages,
  checkPooledGradient,
  outputSize,
  poolConfig,
  type PoolOptions,
  type PoolSizes,
  poolSizes,
  poolText,
  type Window2D,
} from "./_im2col.ts";

/** Options of {@linkcode AvgPool2D}. */
export interface AvgPool2DOptions {
  /** Step of the window, a number or `[h, w]`; the kernel size when omitted. */
  stride?: number | readonly [number, number];
  /**
   * Zeros added on each side, a number or `[h, w]`, at most half the kernel; they count in
   * the mean. 0 when omitted.
   */
  padding?: number | readonly [number, number];
}

/**
 * Average pooling over NCHW images, as PyTorch's `AvgPool2d` with its defaults: each output
 * is the mean of its KH×KW window, `outputs[n, c, y, x] = Σ_{i,j} inputs[n, c, y·SH + i − PH,
 * x·SW + j − PW] / (KH·KW)`, where padded cells count as zeros in the mean
 * (`count_include_pad=True`). Backward spreads each output's gradient evenly over its
 * window; overlapping windows add up.
 *
 * Shapes: inputs `[batch, channels, H, W]` → outputs `[batch, channels, OH, OW]`,
 * `OH = ⌊(H + 2·PH − KH) / SH⌋ + 1` (and OW alike).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { AvgPool2D, Tensor } from "@chainrule/nn";
 *
 * const pool = new AvgPool2D(2);
 * const image = Tensor.from([[[[1, 2, 5, 0], [3, 4, 1, 2]]]]);
 * assert.deepEqual(pool.forward(image).toArray(), [[[[2.5, 2]]]]);
 * assert.deepEqual(pool.backward(Tensor.from([[[[4, 8]]]])).toArray(), [[[[1, 1, 2, 2], [1, 1, 2, 2]]]]);
 * ```
 */
export class AvgPool2D implements Layer, GpuLayer {
  /** Registry name. */
  readonly kind = "AvgPool2D";
  /** `[KH, KW]` */
  readonly kernelSize: readonly [number, number];
  /** `[SH, SW]` */
  readonly stride: readonly [number, number];
  /** `[PH, PW]` */
  readonly padding: readonly [number, number];
  readonly #sizes: PoolSizes;
  #inputs?: Tensor; // [N, C, H, W], cached by forward for backward
  #training = false;
  #outputs = new Scratch(); // reused by training forwards
  #dinputs = new Scratch(); // reused by backward after a training forward
  #gpuInputs?: GpuTensor; // [N, C, H, W], cached by gpuForward for gpuBackward
  #gpuOutputs?: GpuTensor; // [N, C, OH, OW], for the shape gpuBackward expects

  /**
   * Creates the layer.
   *
   * @throws {RangeError} for sizes that are not positive integers, or padding more than half
   * the kernel.
   */
  constructor(kernelSize: number | readonly [number, number], options: AvgPool2DOptions = {}) {
    this.#sizes = poolSizes(kernelSize, options as PoolOptions, "new AvgPool2D");
    ({ kernelSize: this.kernelSize, stride: this.stride, padding: this.padding } = this.#sizes);
  }

  /** Rebuilds the layer from {@linkcode AvgPool2D.config}. */
  static fromConfig(config: JsonObject): AvgPool2D {
    const { kernelSize, ...options } = config as unknown as
      & { kernelSize: number | [number, number] }
      & AvgPool2DOptions;
    return new AvgPool2D(kernelSize, options);
  }

  /**
   * `inputs` [N, C, H, W] → outputs [N, C, OH, OW]; a training forward reuses its buffers.
   *
   * @throws {TypeError} for inputs that are not 4-D or are smaller than the kernel.
   */
  forward(inputs: Tensor, options?: ForwardOptions): Tensor {
    const window = this.#sizes.window;
    const [batch, channels, height, width, outH, outW] = checkImages(
      inputs,
      "AvgPool2D.forward",
      window,
    );
    this.#inputs = inputs;
    this.#training = options?.training === true;
    const shape = [batch, channels, outH, outW];
    const outputs = this.#training
      ? this.#outputs.get(inputs.dtype, shape)
      : Tensor.zeros(shape, { dtype: inputs.dtype });
    avgPool(inputs.data, outputs.data, batch * channels, height, width, window, false);
    return outputs;
  }

  // dinputs[window cells] += dvalues / (KH·KW)
  /** `dvalues` [N, C, OH, OW] → dinputs [N, C, H, W] */
  backward(dvalues: Tensor): Tensor {
    const inputs = this.#inputs;
    if (!inputs) throw new Error("AvgPool2D.backward: call forward first");
    const window = this.#sizes.window;
    checkPooledGradient(dvalues, inputs, window, "AvgPool2D.backward");
    const dinputs = this.#training
      ? this.#dinputs.get(inputs.dtype, inputs.shape)
      : Tensor.zeros(inputs.shape, { dtype: inputs.dtype });
    const [batch, channels, height, width] = inputs.shape;
    dinputs.data.fill(0);
    avgPool(dinputs.data, dvalues.data, batch * channels, height, width, window, true);
    return dinputs;
  }

  /**
   * {@linkcode AvgPool2D.forward} on the device: `inputs` [N, C, H, W] → outputs
   * [N, C, OH, OW].
   *
   * @throws {TypeError} for inputs that are not float32 4-D or are smaller than the kernel.
   */
  gpuForward(ctx: GpuContext, inputs: GpuTensor): GpuTensor {
    const window = this.#sizes.window;
    const [batch, channels, height, width, outH, outW] = gpuImages(
      inputs,
      "AvgPool2D.gpuForward",
      window,
    );
    const outputs = ctx.buffer(this, "outputs", [batch, channels, outH, outW]);
    const scale = 1 / (window.kernelH * window.kernelW);
    const uniforms = poolWords(window, batch * channels, height, width, outH, outW, scale);
    const code = kernel("AvgPool2D.forward", AVG_POOL_FORWARD);
    ctx.run(this, "forward", code, [inputs, outputs], uniforms, gridFor(outputs.size));
    this.#gpuInputs = inputs;
    this.#gpuOutputs = outputs;
    return outputs;
  }

  // dinputs[i] = Σ dvalues[o] / (KH·KW) over the outputs o whose window holds i
  /** {@linkcode AvgPool2D.backward} on the device: `dvalues` [N, C, OH, OW] → dinputs [N, C, H, W]. */
  gpuBackward(ctx: GpuContext, dvalues: GpuTensor): GpuTensor {
    const inputs = this.#gpuInputs, outputs = this.#gpuOutputs;
    if (!inputs || !outputs) throw new Error("AvgPool2D.gpuBackward: call gpuForward first");
    checkGpuGradient(dvalues, outputs.shape, "AvgPool2D.gpuBackward");
    const window = this.#sizes.window;
    const [batch, channels, height, width] = inputs.shape;
    const [, , outH, outW] = outputs.shape;
    const dinputs = ctx.buffer(this, "dinputs", inputs.shape);
    const scale = 1 / (window.kernelH * window.kernelW);
    const uniforms = poolWords(window, batch * channels, height, width, outH, outW, scale);
    const code = kernel("AvgPool2D.backward", AVG_POOL_BACKWARD);
    ctx.run(this, "backward", code, [dvalues, dinputs], uniforms, gridFor(dinputs.size));
    return dinputs;
  }

  /** None: pooling has no parameters. */
  params(): Param[] {
    return [];
  }

  /** `{ kernelSize }`, and `stride` and `padding` where they are not the defaults. */
  config(): JsonObject {
    return poolConfig(this.#sizes);
  }

  /** `AvgPool2D(kernel=2×2)` */
  toString(): string {
    return poolText("AvgPool2D", this.#sizes);
  }
}

// outputs[o] = Σ of o's window (padding counts as zeros) · scale, scale = 1/(KH·KW).
const AVG_POOL_FORWARD = /* wgsl */ `${POOL_GEOMETRY}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${flatIndex()}
  if (i >= p.planes * p.outH * p.outW) { return; }
  let w = windowOf(i);
  var sum = 0.0;
  for (var ih = w.rows.x; ih < w.rows.y; ih++) {
    for (var iw = w.columns.x; iw < w.columns.y; iw++) { sum += x[w.base + ih * p.width + iw]; }
  }
  out[i] = sum * p.scale;
}`;

// Gathered per input, in the order the CPU spreads them (outputs row-major).
const AVG_POOL_BACKWARD = /* wgsl */ `${POOL_GEOMETRY}
@group(0) @binding(1) var<storage, read> dv: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${flatIndex()}
  if (i >= p.planes * p.height * p.width) { return; }
  let c = coverOf(i);
  var sum = 0.0;
  for (var oh = c.rows.x; oh < c.rows.y; oh++) {
    for (var ow = c.columns.x; ow < c.columns.y; ow++) {
      sum += dv[(c.plane * p.outH + oh) * p.outW + ow] * p.scale;
    }
  }
  dx[i] = sum;
}`;

// Forward: y[plane, oh, ow] = Σ window of x / (KH·KW). Backward (`spread`): every cell of
// the window gets x[window cells] += y[plane, oh, ow] / (KH·KW), x being dinputs, y dvalues.
function avgPool(
  x: FloatArray,
  y: FloatArray,
  planes: number,
  height: number,
  width: number,
  window: Window2D,
  spread: boolean,
): void {
  const [outH, outW] = outputSize(window, height, width);
  const { kernelH, kernelW, strideH, strideW, padTop, padLeft } = window;
  const scale = 1 / (kernelH * kernelW);
  const plane = height * width;
  let o = 0;
  for (let q = 0; q < planes; q++) {
    const base = q * plane;
    for (let oh = 0; oh < outH; oh++) {
      const top = oh * strideH - padTop;
      const hFrom = Math.max(top, 0), hTo = Math.min(top + kernelH, height);
      for (let ow = 0; ow < outW; ow++, o++) {
        const left = ow * strideW - padLeft;
        const wFrom = Math.max(left, 0), wTo = Math.min(left + kernelW, width);
        if (spread) {
          const share = y[o] * scale;
          for (let ih = hFrom; ih < hTo; ih++) {
            const row = base + ih * width;
            for (let iw = wFrom; iw < wTo; iw++) x[row + iw] += share;
          }
        } else {
          let sum = 0;
          for (let ih = hFrom; ih < hTo; ih++) {
            const row = base + ih * width;
            for (let iw = wFrom; iw < wTo; iw++) sum += x[row + iw];
          }
          y[o] = sum * scale;
        }
      }
    }
  }
}
