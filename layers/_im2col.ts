// What the 2-D layers share (Conv2D, MaxPool2D, AvgPool2D): their size arguments, the
// geometry of a window sliding over NCHW inputs (`Window2D`, part of the Backend contract in
// core/backend.ts) and the checks of an input against it, and the im2col/col2im lowering that
// turns a convolution into one matrix product (in backends/_lowering.ts, which the wasm
// backend's worker threads run too). Private to the layers.
//
// Dimension letters: N samples, C channels, H×W input height and width, KH×KW kernel,
// OH×OW output height and width, P = OH·OW output positions per channel.
import { describe, describeKind } from "../core/_describe.ts";
import type { Window2D } from "../core/backend.ts";
import { type FloatArray, formatShape, Tensor } from "../core/tensor.ts";

export type { Window2D };
export { col2im, im2col } from "../backends/_lowering.ts";

/** A size given as one number for both dimensions, or as `[height, width]`. */
export type Size2D = number | readonly [number, number];

/**
 * `value` as `[height, width]`.
 *
 * @throws {RangeError} naming `where` and `name` unless it is an integer ≥ `min`, or a pair
 * of them.
 */
export function pair(value: Size2D, name: string, where: string, min = 1): [number, number] {
  if (!isPair(value, min)) {
    const kind = min === 0 ? "non-negative" : "positive";
    throw new RangeError(
      `${where}: ${name} must be a ${kind} integer or [height, width] of ${kind} integers, got ${
        describe(value)
      }`,
    );
  }
  return typeof value === "number" ? [value, value] : [value[0], value[1]];
}

/** Whether `value` is an integer ≥ `min`, or a pair `[height, width]` of them. */
export function isPair(value: unknown, min = 1): value is Size2D {
  const [h, w] = typeof value === "number"
    ? [value, value]
    : Array.isArray(value) && value.length === 2
    ? value
    : [NaN, NaN];
  return Number.isSafeInteger(h) && Number.isSafeInteger(w) && h >= min && w >= min;
}

/** `3` for a square pair, `[3, 2]` otherwise: how configs store a pair. */
export function pairConfig([h, w]: readonly [number, number]): number | number[] {
  return h === w ? h : [h, w];
}

/** `3×2` */
export function pairText([h, w]: readonly [number, number]): string {
  return `${h}×${w}`;
}

/** Output height and width of `window` over an H×W input; ≤ 0 when the window does not fit. */
export function outputSize(window: Window2D, height: number, width: number): [number, number] {
  const spanH = window.dilationH * (window.kernelH - 1) + 1;
  const spanW = window.dilationW * (window.kernelW - 1) + 1;
  const paddedH = height + window.padTop + window.padBottom;
  const paddedW = width + window.padLeft + window.padRight;
  return [
    Math.floor((paddedH - spanH) / window.strideH) + 1,
    Math.floor((paddedW - spanW) / window.strideW) + 1,
  ];
}

/**
 * Checks that `inputs` is a 4-D `[N, C, H, W]` tensor of `channels` channels (any when
 * undefined), of `dtype`, with a non-empty batch, that the window fits inside the padded
 * input, and returns `[N, C, H, W, OH, OW]`.
 *
 * @throws {TypeError} naming `where` for the wrong rank, channel count or dtype, and for an
 * input smaller than the (dilated) kernel; {RangeError} for an empty batch.
 */
export function checkImages(
  inputs: Tensor,
  where: string,
  window: Window2D,
  channels?: number,
  dtype?: string,
): [number, number, number, number, number, number] {
  if (!(inputs instanceof Tensor)) {
    throw new TypeError(`${where}: inputs must be a Tensor, got ${describeKind(inputs)}`);
  }
  const shape = () => formatShape(inputs.shape); // for the messages only
  if (inputs.rank !== 4) {
    const hint = inputs.rank === 2
      ? ' (images as rows? reshape them, e.g. x.reshape([samples, 1, 28, 28]), or read them with idxDataset(..., { layout: "nchw" }))'
      : "";
    throw new TypeError(
      `${where}: inputs must be 4-D [batch, channels, height, width], got shape ${shape()}${hint}`,
    );
  }
  const [n, c, h, w] = inputs.shape;
  if (n === 0) throw new RangeError(`${where}: inputs is an empty batch (shape ${shape()})`);
  if (channels !== undefined && c !== channels) {
    throw new TypeError(
      `${where}: inputs have ${c} channels, expected ${channels} (inputs shape ${shape()})`,
    );
  }
  if (dtype !== undefined && inputs.dtype !== dtype) {
    throw new TypeError(
      `${where}: inputs are ${inputs.dtype}, the layer is ${dtype} (convert with tensor.clone({ dtype: "${dtype}" }))`,
    );
  }
  const [oh, ow] = outputSize(window, h, w);
  if (oh <= 0 || ow <= 0) {
    const spanH = window.dilationH * (window.kernelH - 1) + 1;
    const spanW = window.dilationW * (window.kernelW - 1) + 1;
    const paddedH = h + window.padTop + window.padBottom;
    const paddedW = w + window.padLeft + window.padRight;
    const dilated = spanH !== window.kernelH || spanW !== window.kernelW
      ? `, dilated to ${spanH}×${spanW},`
      : "";
    throw new TypeError(
      `${where}: the kernel ${window.kernelH}×${window.kernelW}${dilated} is larger than the ` +
        `padded input ${paddedH}×${paddedW}; expected inputs of at least ${
          Math.max(1, spanH - window.padTop - window.padBottom)
        }×${
          Math.max(1, spanW - window.padLeft - window.padRight)
        } (height×width), got shape ${shape()}`,
    );
  }
  return [n, c, h, w, oh, ow];
}

/** Whether two shapes are equal, without building strings. */
export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let d = 0; d < a.length; d++) if (a[d] !== b[d]) return false;
  return true;
}

/**
 * Checks that `dvalues` has the shape and dtype of the outputs of the last forward on
 * `inputs`.
 *
 * @throws {TypeError} naming `where` when it does not.
 */
export function checkPooledGradient(
  dvalues: Tensor,
  inputs: Tensor,
  window: Window2D,
  where: string,
): void {
  const [batch, channels, height, width] = inputs.shape;
  const expected = [batch, channels, ...outputSize(window, height, width)];
  if (
    !(dvalues instanceof Tensor) || dvalues.dtype !== inputs.dtype ||
    !sameShape(dvalues.shape, expected)
  ) {
    const got = dvalues instanceof Tensor
      ? `${dvalues.dtype} ${formatShape(dvalues.shape)}`
      : describeKind(dvalues);
    throw new TypeError(
      `${where}: dvalues is ${got}, expected ${inputs.dtype} ${
        formatShape(expected)
      } like the last forward's outputs`,
    );
  }
}

/**
 * Views into a layer's buffers, made once per offset and reused while the buffer and the
 * length stay the same: a training step passes parts of a buffer to the backend without
 * allocating a view each time.
 */
export class Views {
  #views = new Map<number, FloatArray>();

  /** `array[offset, offset + length)` as a view (the array itself when it is all of it). */
  get(array: FloatArray, offset: number, length: number): FloatArray {
    if (offset === 0 && length === array.length) return array;
    let view = this.#views.get(offset);
    if (
      view === undefined || view.buffer !== array.buffer || view.length !== length ||
      view.byteOffset !== array.byteOffset + offset * array.BYTES_PER_ELEMENT
    ) {
      if (this.#views.size >= 256) this.#views.clear(); // many shapes: keep it small
      view = array.subarray(offset, offset + length);
      this.#views.set(offset, view);
    }
    return view;
  }
}

/** The size options of a pooling layer. */
export interface PoolOptions {
  /** Step of the window, a number or `[h, w]`; the kernel size when omitted. */
  stride?: number | readonly [number, number];
  /** Cells added on each side, a number or `[h, w]`, at most half the kernel; 0 when omitted. */
  padding?: number | readonly [number, number];
}

/** A pooling layer's sizes, checked, as the layer keeps them. */
export interface PoolSizes {
  kernelSize: readonly [number, number];
  stride: readonly [number, number];
  padding: readonly [number, number];
  window: Window2D;
}

/**
 * Checks a pooling layer's arguments.
 *
 * @throws {RangeError} naming `where` for sizes that are not positive integers (padding:
 * non-negative), or padding more than half the kernel (PyTorch's rule: every window then
 * holds at least one input cell).
 */
export function poolSizes(
  kernelSize: number | readonly [number, number],
  options: PoolOptions,
  where: string,
): PoolSizes {
  const kernel = pair(kernelSize, "kernelSize", where);
  // Only an absent option takes its default: null is refused, as any other non-size.
  const stride = pair(options.stride === undefined ? kernel : options.stride, "stride", where);
  const padding = pair(options.padding === undefined ? 0 : options.padding, "padding", where, 0);
  if (2 * padding[0] > kernel[0] || 2 * padding[1] > kernel[1]) {
    throw new RangeError(
      `${where}: padding must be at most half the kernel size (as PyTorch), got padding ${
        formatShape(padding)
      } for kernel ${pairText(kernel)}`,
    );
  }
  return {
    kernelSize: kernel,
    stride,
    padding,
    window: {
      kernelH: kernel[0],
      kernelW: kernel[1],
      strideH: stride[0],
      strideW: stride[1],
      dilationH: 1,
      dilationW: 1,
      padTop: padding[0],
      padBottom: padding[0],
      padLeft: padding[1],
      padRight: padding[1],
    },
  };
}

/** A pooling layer's config: the kernel, and stride and padding where not the defaults. */
export function poolConfig(sizes: PoolSizes): Record<string, number | number[]> {
  const config: Record<string, number | number[]> = { kernelSize: pairConfig(sizes.kernelSize) };
  const [sh, sw] = sizes.stride, [kh, kw] = sizes.kernelSize;
  if (sh !== kh || sw !== kw) config.stride = pairConfig(sizes.stride);
  if (sizes.padding[0] !== 0 || sizes.padding[1] !== 0) config.padding = pairConfig(sizes.padding);
  return config;
}

/** `MaxPool2D(kernel=3×3, stride=2)` */
export function poolText(kind: string, sizes: PoolSizes): string {
  const parts = [`kernel=${pairText(sizes.kernelSize)}`];
  const { stride, padding } = poolConfig(sizes);
  const text = (v: number | number[]) => (typeof v === "number" ? String(v) : formatShape(v));
  if (stride !== undefined) parts.push(`stride=${text(stride)}`);
  if (padding !== undefined) parts.push(`padding=${text(padding)}`);
  return `${kind}(${parts.join(", ")})`;
}
