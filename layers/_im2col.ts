// What the 2-D layers share (Conv2D, MaxPool2D, AvgPool2D): their size arguments, the
// geometry of a window sliding over NCHW inputs, the checks of an input against it, and the
// im2col/col2im lowering that turns a convolution into one matrix product. Private to the
// layers.
//
// Dimension letters: N samples, C channels, H×W input height and width, KH×KW kernel,
// OH×OW output height and width, P = OH·OW output positions per channel.
import { type FloatArray, formatShape, Tensor } from "../core/tensor.ts";

/** A size given as one number for both dimensions, or as `[height, width]`. */
export type Size2D = number | readonly [number, number];

/**
 * `value` as `[height, width]`.
 *
 * @throws {RangeError} naming `where` and `name` unless it is an integer ≥ `min`, or a pair
 * of them.
 */
export function pair(value: Size2D, name: string, where: string, min = 1): [number, number] {
  const [h, w] = typeof value === "number"
    ? [value, value]
    : Array.isArray(value) && value.length === 2
    ? value
    : [NaN, NaN];
  if (!Number.isSafeInteger(h) || !Number.isSafeInteger(w) || h < min || w < min) {
    const kind = min === 0 ? "non-negative" : "positive";
    throw new RangeError(
      `${where}: ${name} must be a ${kind} integer or [height, width] of ${kind} integers, got ${
        Array.isArray(value) ? `[${value.join(", ")}]` : JSON.stringify(value) ?? String(value)
      }`,
    );
  }
  return [h, w];
}

/** `3` for a square pair, `[3, 2]` otherwise: how configs store a pair. */
export function pairConfig([h, w]: readonly [number, number]): number | number[] {
  return h === w ? h : [h, w];
}

/** `3×2` */
export function pairText([h, w]: readonly [number, number]): string {
  return `${h}×${w}`;
}

/**
 * The geometry of a window sliding over the last two axes of NCHW inputs. Padding may differ
 * on the two sides of an axis (`"same"` with an even kernel pads one more at the bottom and
 * right, as PyTorch does).
 */
export interface Window2D {
  kernelH: number;
  kernelW: number;
  strideH: number;
  strideW: number;
  dilationH: number;
  dilationW: number;
  padTop: number;
  padBottom: number;
  padLeft: number;
  padRight: number;
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
    throw new TypeError(`${where}: inputs must be a Tensor, got ${typeof inputs}`);
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
      : typeof dvalues;
    throw new TypeError(
      `${where}: dvalues is ${got}, expected ${inputs.dtype} ${
        formatShape(expected)
      } like the last forward's outputs`,
    );
  }
}

// The output positions o in [0, outSize) whose input position o·stride + offset lies in
// [0, inSize) are [rangeFirst, rangeEnd) (plain numbers, so that the loops allocate nothing).
function rangeFirst(offset: number, stride: number, outSize: number): number {
  return Math.min(offset >= 0 ? 0 : Math.ceil(-offset / stride), outSize);
}

function rangeEnd(offset: number, stride: number, inSize: number, outSize: number): number {
  const end = Math.min(outSize, Math.floor((inSize - 1 - offset) / stride) + 1);
  return Math.max(rangeFirst(offset, stride, outSize), end);
}

/**
 * im2col for samples `[first, first + count)` of `x` `[N, C, H, W]`: writes `cols`
 * `[C·KH·KW, count·P]`, row `(c·KH + i)·KW + j`, column `s·P + oh·OW + ow`, holding
 * `x[first + s, c, oh·SH + i·DH − padTop, ow·SW + j·DW − padLeft]` (0 in the padding), so
 * that `W[O, C·KH·KW] · cols` is the convolution of those samples.
 */
export function im2col(
  x: FloatArray,
  first: number,
  count: number,
  channels: number,
  height: number,
  width: number,
  window: Window2D,
  outH: number,
  outW: number,
  cols: FloatArray,
): void {
  const { kernelH, kernelW, strideH, strideW, dilationH, dilationW } = window;
  const positions = outH * outW;
  const rowLength = count * positions; // [C·KH·KW, count·P]
  const plane = height * width;
  // Stride 1 with outputs as wide as the inputs ("same" padding): a row of cols is the
  // image shifted by (dy, dx), one contiguous copy; only the columns that wrap around the
  // image's edge are zeroed after it.
  const contiguous = strideH === 1 && strideW === 1 && outW === width;
  let row = 0;
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < kernelH; i++) {
      const dy = i * dilationH - window.padTop;
      const ohFirst = rangeFirst(dy, strideH, outH), ohEnd = rangeEnd(dy, strideH, height, outH);
      for (let j = 0; j < kernelW; j++, row++) {
        const dx = j * dilationW - window.padLeft;
        const owFirst = rangeFirst(dx, strideW, outW), owEnd = rangeEnd(dx, strideW, width, outW);
        for (let s = 0; s < count; s++) {
          const source = ((first + s) * channels + c) * plane + dx; // + ih·W + ow·SW
          const start = row * rowLength + s * positions;
          if (contiguous) {
            const from = source + dy * width;
            shiftedCopy(x, from, cols, start, positions, ohFirst, ohEnd, owFirst, owEnd, outW);
            continue;
          }
          // Plain loops, not fill(): a builtin call per short run cost more than the copies.
          for (let k = start, end = start + ohFirst * outW; k < end; k++) cols[k] = 0;
          for (let oh = ohFirst; oh < ohEnd; oh++) {
            const to = start + oh * outW;
            const from = source + (oh * strideH + dy) * width;
            for (let ow = 0; ow < owFirst; ow++) cols[to + ow] = 0;
            if (strideW === 1) {
              for (let ow = owFirst; ow < owEnd; ow++) cols[to + ow] = x[from + ow];
            } else {
              for (let ow = owFirst; ow < owEnd; ow++) cols[to + ow] = x[from + ow * strideW];
            }
            for (let ow = owEnd; ow < outW; ow++) cols[to + ow] = 0;
          }
          for (let k = start + ohEnd * outW, end = start + positions; k < end; k++) cols[k] = 0;
        }
      }
    }
  }
}

// cols[start + p] = x[source + p] for the positions p = oh·W + ow of the valid block
// (rows [ohFirst, ohEnd), columns [owFirst, owEnd)), 0 at the other positions of
// [0, positions).
function shiftedCopy(
  x: FloatArray,
  source: number,
  cols: FloatArray,
  start: number,
  positions: number,
  ohFirst: number,
  ohEnd: number,
  owFirst: number,
  owEnd: number,
  width: number,
): void {
  const empty = ohEnd <= ohFirst || owEnd <= owFirst;
  const lo = empty ? positions : ohFirst * width + owFirst;
  const hi = empty ? positions : (ohEnd - 1) * width + owEnd;
  for (let k = 0; k < lo; k++) cols[start + k] = 0;
  for (let k = lo; k < hi; k++) cols[start + k] = x[source + k];
  for (let k = hi; k < positions; k++) cols[start + k] = 0;
  if (owFirst > 0 || owEnd < width) {
    for (let oh = ohFirst; oh < ohEnd; oh++) {
      const rowStart = start + oh * width;
      for (let ow = 0; ow < owFirst; ow++) cols[rowStart + ow] = 0;
      for (let ow = owEnd; ow < width; ow++) cols[rowStart + ow] = 0;
    }
  }
}

/**
 * col2im, the adjoint of {@linkcode im2col}: adds every element of `cols`
 * `[C·KH·KW, count·P]` into the element of `dx` `[N, C, H, W]` it was read from (padding
 * cells are dropped, and may be overwritten with zeros in `cols`). Samples
 * `[first, first + count)` of `dx` must hold what they should be added to (zeros for a fresh
 * gradient).
 */
export function col2im(
  cols: FloatArray,
  first: number,
  count: number,
  channels: number,
  height: number,
  width: number,
  window: Window2D,
  outH: number,
  outW: number,
  dx: FloatArray,
): void {
  const { kernelH, kernelW, strideH, strideW, dilationH, dilationW } = window;
  const positions = outH * outW;
  const rowLength = count * positions;
  const plane = height * width;
  const contiguous = strideH === 1 && strideW === 1 && outW === width; // as in im2col
  let row = 0;
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < kernelH; i++) {
      const dy = i * dilationH - window.padTop;
      const ohFirst = rangeFirst(dy, strideH, outH), ohEnd = rangeEnd(dy, strideH, height, outH);
      for (let j = 0; j < kernelW; j++, row++) {
        const dxOffset = j * dilationW - window.padLeft;
        const owFirst = rangeFirst(dxOffset, strideW, outW);
        const owEnd = rangeEnd(dxOffset, strideW, width, outW);
        if (ohEnd <= ohFirst || owEnd <= owFirst) continue;
        for (let s = 0; s < count; s++) {
          const target = ((first + s) * channels + c) * plane + dxOffset;
          const start = row * rowLength + s * positions;
          if (contiguous) {
            // One run over the valid block; the columns that wrap around the image's edge
            // are zeroed in cols first, so that they add nothing.
            for (let oh = ohFirst; oh < ohEnd; oh++) {
              const rowStart = start + oh * outW;
              for (let ow = 0; ow < owFirst; ow++) cols[rowStart + ow] = 0;
              for (let ow = owEnd; ow < outW; ow++) cols[rowStart + ow] = 0;
            }
            const to = target + dy * width;
            const hi = (ohEnd - 1) * outW + owEnd;
            for (let k = ohFirst * outW + owFirst; k < hi; k++) dx[to + k] += cols[start + k];
            continue;
          }
          for (let oh = ohFirst; oh < ohEnd; oh++) {
            const from = start + oh * outW;
            const to = target + (oh * strideH + dy) * width;
            if (strideW === 1) {
              for (let ow = owFirst; ow < owEnd; ow++) dx[to + ow] += cols[from + ow];
            } else {
              for (let ow = owFirst; ow < owEnd; ow++) dx[to + ow * strideW] += cols[from + ow];
            }
          }
        }
      }
    }
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
  const stride = pair(options.stride ?? kernel, "stride", where);
  const padding = pair(options.padding ?? 0, "padding", where, 0);
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
