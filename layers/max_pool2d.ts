import type { JsonObject } from "../core/json.ts";
import type { ForwardOptions, Layer } from "../core/layer.ts";
import type { Param } from "../core/param.ts";
import { Scratch } from "../core/_scratch.ts";
import { type FloatArray, Tensor } from "../core/tensor.ts";
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

/** Options of {@linkcode MaxPool2D}. */
export interface MaxPool2DOptions {
  /** Step of the window, a number or `[h, w]`; the kernel size when omitted. */
  stride?: number | readonly [number, number];
  /**
   * Cells added on each side (they never win), a number or `[h, w]`, at most half the
   * kernel; 0 when omitted.
   */
  padding?: number | readonly [number, number];
}

/**
 * Max pooling over NCHW images, as PyTorch's `MaxPool2d`: each output is the largest input
 * in its window, `outputs[n, c, y, x] = max_{i,j} inputs[n, c, y·SH + i − PH, x·SW + j − PW]`
 * (padding never wins). Backward sends each output's gradient to the input it came from;
 * where several inputs of a window tie, the first in row-major order gets it, as in PyTorch.
 * Overlapping windows add up their gradients.
 *
 * Shapes: inputs `[batch, channels, H, W]` → outputs `[batch, channels, OH, OW]`,
 * `OH = ⌊(H + 2·PH − KH) / SH⌋ + 1` (and OW alike).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MaxPool2D, Tensor } from "@chainrule/nn";
 *
 * const pool = new MaxPool2D(2);
 * const image = Tensor.from([[[[1, 2, 5, 0], [3, 4, 1, 1]]]]);
 * assert.deepEqual(pool.forward(image).toArray(), [[[[4, 5]]]]);
 * assert.deepEqual(pool.backward(Tensor.from([[[[10, 20]]]])).toArray(), [[[[0, 0, 20, 0], [0, 10, 0, 0]]]]);
 * ```
 */
export class MaxPool2D implements Layer {
  /** Registry name. */
  readonly kind = "MaxPool2D";
  /** `[KH, KW]` */
  readonly kernelSize: readonly [number, number];
  /** `[SH, SW]` */
  readonly stride: readonly [number, number];
  /** `[PH, PW]` */
  readonly padding: readonly [number, number];
  readonly #sizes: PoolSizes;
  #inputs?: Tensor; // [N, C, H, W], cached by forward for backward
  #training = false;
  #argmax = new Int32Array(0); // [N·C·OH·OW]: the input index each output came from
  #outputs = new Scratch(); // reused by training forwards
  #dinputs = new Scratch(); // reused by backward after a training forward

  /**
   * Creates the layer.
   *
   * @throws {RangeError} for sizes that are not positive integers, or padding more than half
   * the kernel.
   */
  constructor(kernelSize: number | readonly [number, number], options: MaxPool2DOptions = {}) {
    this.#sizes = poolSizes(kernelSize, options as PoolOptions, "new MaxPool2D");
    ({ kernelSize: this.kernelSize, stride: this.stride, padding: this.padding } = this.#sizes);
  }

  /** Rebuilds the layer from {@linkcode MaxPool2D.config}. */
  static fromConfig(config: JsonObject): MaxPool2D {
    const { kernelSize, ...options } = config as unknown as
      & { kernelSize: number | [number, number] }
      & MaxPool2DOptions;
    return new MaxPool2D(kernelSize, options);
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
      "MaxPool2D.forward",
      window,
    );
    this.#inputs = inputs;
    this.#training = options?.training === true;
    const shape = [batch, channels, outH, outW];
    const outputs = this.#training
      ? this.#outputs.get(inputs.dtype, shape)
      : Tensor.zeros(shape, { dtype: inputs.dtype });
    const size = outputs.size;
    if (!this.#training) this.#argmax = new Int32Array(size);
    else if (this.#argmax.length < size) this.#argmax = new Int32Array(size);
    maxPool(inputs.data, outputs.data, this.#argmax, batch * channels, height, width, window);
    return outputs;
  }

  // dinputs[argmax] += dvalues: each output's gradient goes to the input that won.
  /** `dvalues` [N, C, OH, OW] → dinputs [N, C, H, W] */
  backward(dvalues: Tensor): Tensor {
    const inputs = this.#inputs;
    if (!inputs) throw new Error("MaxPool2D.backward: call forward first");
    checkPooledGradient(dvalues, inputs, this.#sizes.window, "MaxPool2D.backward");
    const dinputs = this.#training
      ? this.#dinputs.get(inputs.dtype, inputs.shape)
      : Tensor.zeros(inputs.shape, { dtype: inputs.dtype });
    const dx = dinputs.data, dv = dvalues.data, argmax = this.#argmax;
    dx.fill(0);
    for (let i = 0; i < dv.length; i++) dx[argmax[i]] += dv[i];
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

  /** `MaxPool2D(kernel=2×2)` */
  toString(): string {
    return poolText("MaxPool2D", this.#sizes);
  }
}

// y[plane, oh, ow] = max of the window; argmax = the flat index in x of the first maximum
// (a NaN wins and stays, as in PyTorch). `planes` = N·C.
function maxPool(
  x: FloatArray,
  y: FloatArray,
  argmax: Int32Array,
  planes: number,
  height: number,
  width: number,
  window: Window2D,
): void {
  const [outH, outW] = outputSize(window, height, width);
  const { kernelH, kernelW, strideH, strideW, padTop, padLeft } = window;
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
        let best = -Infinity, at = base + hFrom * width + wFrom;
        for (let ih = hFrom; ih < hTo; ih++) {
          const row = base + ih * width;
          for (let iw = wFrom; iw < wTo; iw++) {
            const v = x[row + iw];
            if (v > best || v !== v) {
              best = v;
              at = row + iw;
            }
          }
        }
        y[o] = best;
        argmax[o] = at;
      }
    }
  }
}
