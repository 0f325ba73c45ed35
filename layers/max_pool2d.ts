import { getBackend } from "../backends/selection.ts";
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
  #keys?: Int32Array; // the last float32 inputs' bits, a view kept while they are the same
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
      ? this.#outputs.get(inputs.dtype, shape, getBackend())
      : Tensor.zeros(shape, { dtype: inputs.dtype });
    const size = outputs.size;
    if (!this.#training) this.#argmax = new Int32Array(size);
    else if (this.#argmax.length < size) this.#argmax = new Int32Array(size);
    const x = inputs.data;
    let keys: Int32Array | null = null; // float32 bits, for the branch-free comparisons
    if (x instanceof Float32Array) {
      const kept = this.#keys;
      const same = kept !== undefined && kept.buffer === x.buffer &&
        kept.byteOffset === x.byteOffset && kept.length === x.length;
      keys = same ? kept : (this.#keys = new Int32Array(x.buffer, x.byteOffset, x.length));
    }
    maxPool(x, outputs.data, this.#argmax, batch * channels, height, width, window, keys);
    return outputs;
  }

  // dinputs[argmax] += dvalues: each output's gradient goes to the input that won.
  /** `dvalues` [N, C, OH, OW] → dinputs [N, C, H, W] */
  backward(dvalues: Tensor): Tensor {
    const inputs = this.#inputs;
    if (!inputs) throw new Error("MaxPool2D.backward: call forward first");
    checkPooledGradient(dvalues, inputs, this.#sizes.window, "MaxPool2D.backward");
    const dinputs = this.#training
      ? this.#dinputs.get(inputs.dtype, inputs.shape, getBackend())
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

// y[plane, oh, ow] = max of the window; argmax = the flat index in x of the first maximum.
// `planes` = N·C. Float32 inputs are compared as integers, without a branch (a data-dependent
// branch per comparison mispredicts on real activations: 8.6 → 2.3 ms for W4's first pool);
// float64 inputs (gradient checks) take the plain loop.
function maxPool(
  x: FloatArray,
  y: FloatArray,
  argmax: Int32Array,
  planes: number,
  height: number,
  width: number,
  window: Window2D,
  keys: Int32Array | null,
): void {
  const [outH, outW] = outputSize(window, height, width);
  const { kernelH, kernelW, strideH, strideW, padTop, padLeft } = window;
  if (kernelH === 2 && kernelW === 2 && strideH === 2 && strideW === 2) {
    if (padTop === 0 && padLeft === 0) {
      return maxPool2x2(keys, x, y, argmax, planes, height, width, outH, outW);
    }
  }
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
        const at = windowMax(x, keys, base, hFrom, hTo, wFrom, wTo, width);
        y[o] = x[at];
        argmax[o] = at;
      }
    }
  }
}

// The 2×2, stride 2 windows of W4 and most CNNs: three float comparisons per output, made
// into 0/1 and used as index offsets, so no branch depends on the data (W4's first pool in a
// training step: 3.3 → 2.4 ms). A comparison with NaN is false, so a window holding a NaN (its sum is
// NaN) takes the general rule instead (`windowMax`).
function maxPool2x2(
  keys: Int32Array | null,
  x: FloatArray,
  y: FloatArray,
  argmax: Int32Array,
  planes: number,
  height: number,
  width: number,
  outH: number,
  outW: number,
): void {
  let o = 0;
  for (let q = 0; q < planes; q++) {
    const base = q * height * width;
    for (let oh = 0; oh < outH; oh++) {
      const rowStart = base + 2 * oh * width;
      for (let ow = 0; ow < outW; ow++, o++) {
        const i = rowStart + 2 * ow, k = i + width;
        const a = x[i], b = x[i + 1], c = x[k], d = x[k + 1];
        const sum = a + b + c + d;
        let j: number;
        if (sum === sum) {
          const upper = i + +(b > a), lower = k + +(d > c); // ties: the first
          j = upper + +(x[lower] > x[upper]) * (lower - upper);
        } else j = windowMax(x, keys, base, 2 * oh, 2 * oh + 2, 2 * ow, 2 * ow + 2, width);
        y[o] = x[j];
        argmax[o] = j;
      }
    }
  }
}

// The flat index of the largest of x[base + ih·width + iw] over rows [hFrom, hTo) and columns
// [wFrom, wTo): the first of equals; float32 by keys, float64 by a loop in which a NaN wins
// and stays, as in PyTorch.
function windowMax(
  x: FloatArray,
  keys: Int32Array | null,
  base: number,
  hFrom: number,
  hTo: number,
  wFrom: number,
  wTo: number,
  width: number,
): number {
  let at = base + hFrom * width + wFrom;
  if (keys) {
    let best = orderKey(keys[at]);
    for (let ih = hFrom; ih < hTo; ih++) {
      const row = base + ih * width;
      for (let iw = wFrom; iw < wTo; iw++) {
        const key = orderKey(keys[row + iw]);
        const less = lessThan(best, key); // 1 when this cell is larger
        best ^= (best ^ key) & -less;
        at ^= (at ^ (row + iw)) & -less;
      }
    }
    return at;
  }
  let best = -Infinity;
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
  return at;
}

// A float32's bits as an int32 that orders like the float: its magnitude bits, negated for a
// negative float, so that −0 and +0 tie (the first wins, as in PyTorch); a NaN of either sign
// keeps its magnitude, above +∞, so it wins as PyTorch's NaN does. No branch.
function orderKey(bits: number): number {
  const magnitude = bits & 0x7fffffff;
  const nan = (0x7f800000 - magnitude) >> 31; // −1 for a NaN, else 0
  const flip = (bits >> 31) & ~nan; // −1 to negate
  return (magnitude ^ flip) - flip;
}

// 1 when a < b, else 0, for int32 a and b: the sign of a − b, corrected where the difference
// overflows int32; no branch.
function lessThan(a: number, b: number): number {
  const difference = (a - b) | 0;
  return (difference ^ ((a ^ b) & (difference ^ a))) >>> 31;
}
