import { describe, describeKind } from "../core/_describe.ts";
import { getBackend } from "../backends/selection.ts";
import { getInitializer } from "../initializers/initializers.ts";
import type { Backend } from "../core/backend.ts";
import type { JsonObject } from "../core/json.ts";
import type { BackwardOptions, ForwardOptions, Layer, TorchName } from "../core/layer.ts";
import { Scratch } from "../core/_scratch.ts";
import { checkAllocation, checkPassAllocation } from "../core/_allocation.ts";
import { Param } from "../core/param.ts";
import { type RandomOptions, resolveRandom } from "../core/random.ts";
import {
  type DType,
  type FloatArray,
  formatShape,
  type NestedArray,
  Tensor,
} from "../core/tensor.ts";
import {
  addPenaltyGradient,
  checkPenalty,
  fillExplicit,
  gpuAddPenaltyGradient,
  gpuPenalty,
  penalty,
  REGULARIZERS,
} from "./_weights.ts";
import type { ConvGeometry } from "../core/backend.ts";
import type { GpuBackwardOptions, GpuContext, GpuLayer, GpuSink, GpuTensor } from "../core/gpu.ts";
import {
  gpuConvForward,
  gpuConvInputGradient,
  gpuConvWeightGradient,
  gpuImages,
  gpuSumChannels,
} from "./_gpu_conv.ts";
import {
  checkImages,
  col2im,
  im2col,
  isPair,
  outputSize,
  pair,
  pairConfig,
  pairText,
  sameShape,
  Views,
  type Window2D,
} from "./_im2col.ts";
import {
  isWinogradWindow,
  WINOGRAD_CHUNK_ELEMENTS,
  WinogradBuffers,
  winogradKernels,
  winogradShape,
} from "./_winograd.ts";
import type { WinogradTransforms } from "../backends/_conv_tasks.ts";
import { RESIDENT_MIN_ELEMENTS } from "../backends/_resident.ts";

// "auto" takes Winograd's algorithm from this many channels in and out (see #takesWinograd).
const AUTO_WINOGRAD_CHANNELS = 16;

/**
 * How {@linkcode Conv2D} computes on the CPU: `"im2col"` (windows unrolled into columns,
 * three matrix products), `"winograd"` (Winograd's F(2×2, 3×3): 3×3 kernels, stride 1,
 * dilation 1 only; forward and input gradient, and on the wasm and blas backends in float32
 * the weights' gradient too, which elsewhere stays on im2col), or `"auto"`, which picks per
 * call (see {@linkcode Conv2DOptions.algorithm}).
 */
export type ConvAlgorithm = "auto" | "im2col" | "winograd";

const ALGORITHMS: readonly ConvAlgorithm[] = ["auto", "im2col", "winograd"];

/** Options of {@linkcode Conv2D}. */
export interface Conv2DOptions extends RandomOptions {
  /** Step of the window, a number or `[h, w]`; 1 when omitted. */
  stride?: number | readonly [number, number];
  /**
   * Zeros added on each side, a number or `[h, w]`; `"valid"` (0, the default) or `"same"`
   * (outputs as large as the inputs; stride 1 only; an even kernel pads one more at the
   * bottom and right, as PyTorch does).
   */
  padding?: number | readonly [number, number] | "valid" | "same";
  /** Spacing between the kernel's taps, a number or `[h, w]`; 1 when omitted. */
  dilation?: number | readonly [number, number];
  /**
   * Initial weights `[outChannels, inChannels, kh, kw]` (PyTorch's `Conv2d.weight` layout, no
   * transpose): nested arrays, or a flat row-major array.
   */
  weights?: NestedArray;
  /** Initial biases `[outChannels]`; zeros when omitted. */
  biases?: NestedArray;
  /** False for a layer without biases (then `params()` is `[weights]`); true when omitted. */
  bias?: boolean;
  /**
   * Name of the weight initializer (see `initializers`), with fanIn = inChannels·kh·kw and
   * fanOut = outChannels·kh·kw; `"he"` when omitted.
   */
  init?: string;
  /** Element type of the parameters; `"float32"` when omitted. */
  dtype?: DType;
  /** L1 penalty on the weights: adds `l1·Σ|w|` to the loss. */
  weightRegularizerL1?: number;
  /** L2 penalty on the weights: adds `l2·Σw²` to the loss. */
  weightRegularizerL2?: number;
  /** L1 penalty on the biases. */
  biasRegularizerL1?: number;
  /** L2 penalty on the biases. */
  biasRegularizerL2?: number;
  /**
   * How the CPU backends compute it: `"im2col"`, `"winograd"` (3×3 kernels, stride 1,
   * dilation 1; a RangeError otherwise) or `"auto"` (the default), which takes Winograd's
   * algorithm where it measured faster: a 3×3, stride-1, dilation-1, float32 layer with at
   * least 16 channels in and out, on a backend that runs the whole convolution itself
   * (wasm: SIMD transforms and products on its pool, a few samples at a time in each
   * thread's cache), a batch of at least 4096 / min(in, out) tiles of 2×2 outputs and
   * images small enough that one sample's 16 planes of tiles hold at most 2²² elements
   * (16·max(in, out)·tiles); im2col otherwise. The GPU path ignores it.
   */
  algorithm?: ConvAlgorithm;
}

// Samples are lowered a chunk at a time, as many as fit in CHUNK_ELEMENTS elements of
// columns (at least one), so that a large inference batch needs no huge buffer. Chunks of
// 2^20 elements (W4's conv2: 18 samples, products of 65 M multiply-adds) cost one thread
// nothing against 2^17 (75 ms a W4 step either way) and let the worker pool split each
// product well: 60 ms a step on 2 threads instead of 72 (bench/w4_ops.ts --threads 2). A
// sample with at least SAMPLE_POSITIONS output positions is a product large enough alone,
// and a chunk of one needs no reordering of outputs and gradients (measured on W4,
// docs/speed.md).
const CHUNK_ELEMENTS = 1 << 20;
const SAMPLE_POSITIONS = 256;

function checkChannels(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`new Conv2D: ${name} must be a positive integer, got ${describe(value)}`);
  }
}

/**
 * 2-D convolution (cross-correlation, as PyTorch's `Conv2d`) over NCHW images:
 * `outputs[n, o, y, x] = b[o] + Σ_c Σ_i Σ_j W[o, c, i, j] · inputs[n, c, y·SH + i·DH − PH,
 * x·SW + j·DW − PW]`, zeros outside the input.
 *
 * Shapes: inputs `[batch, inChannels, H, W]` → outputs `[batch, outChannels, OH, OW]` with
 * `OH = ⌊(H + padTop + padBottom − DH·(KH − 1) − 1) / SH⌋ + 1` (and OW alike); weights
 * `[outChannels, inChannels, KH, KW]` as PyTorch keeps them, biases `[outChannels]`.
 *
 * The work is three matrix products: each sample's windows are unrolled into columns
 * `[inChannels·KH·KW, OH·OW]` (im2col), then `outputs = W·cols`, `dweights += dvalues·colsᵀ`
 * and `dcols = Wᵀ·dvalues`, folded back into `dinputs` (col2im). The active backend runs the
 * whole convolution where it offers one (`wasm` does, on the worker pool), else the layer
 * lowers chunks of samples onto the backend's products. On WebGPU the same three products
 * read the images in place (an implicit GEMM, no unrolled columns), and `dinputs` gathers:
 * each input pixel sums the taps that read it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Conv2D, Tensor } from "@chainrule/nn";
 *
 * // One 2×2 kernel that sums its window, over a 1×1×3×3 image.
 * const conv = new Conv2D(1, 1, 2, { weights: [1, 1, 1, 1], biases: [0.5], dtype: "float64" });
 * const image = Tensor.from([[[[1, 2, 3], [4, 5, 6], [7, 8, 9]]]], { dtype: "float64" });
 * assert.deepEqual(conv.forward(image).toArray(), [[[[12.5, 16.5], [24.5, 28.5]]]]);
 * ```
 */
export class Conv2D implements Layer, GpuLayer {
  /** Registry name. */
  readonly kind = "Conv2D";
  /**
   * True: the next layer may write over the outputs of a training forward (backward reads the
   * inputs, never the outputs).
   */
  readonly outputsFree: boolean = true;
  /** Channels per input sample. */
  readonly inChannels: number;
  /** Channels per output sample (the number of kernels). */
  readonly outChannels: number;
  /** `[KH, KW]` */
  readonly kernelSize: readonly [number, number];
  /** `[SH, SW]` */
  readonly stride: readonly [number, number];
  /** `[PH, PW]` zeros on each side, or `"same"`. */
  readonly padding: readonly [number, number] | "same";
  /** `[DH, DW]` */
  readonly dilation: readonly [number, number];
  /** `[outChannels, inChannels, KH, KW]` */
  readonly weights: Param;
  /** `[outChannels]`; absent for a layer built with `bias: false`. */
  readonly biases?: Param;
  /** Name of the initializer the weights were drawn with. */
  readonly init: string;
  /** L1 penalty on the weights (0 = none). */
  readonly weightRegularizerL1: number;
  /** L2 penalty on the weights. */
  readonly weightRegularizerL2: number;
  /** L1 penalty on the biases. */
  readonly biasRegularizerL1: number;
  /** L2 penalty on the biases. */
  readonly biasRegularizerL2: number;
  /** How the CPU backends compute it (see {@linkcode Conv2DOptions.algorithm}). */
  readonly algorithm: ConvAlgorithm;
  readonly #window: Window2D;
  #inputs?: Tensor; // [N, C, H, W], cached by forward for backward
  #training = false; // whether the cached forward was a training one
  #colsKept = false; // whether it kept its columns in #cols (lowered here, not by the backend)
  #outputs = new Scratch(); // [N, O, OH, OW], reused by training forwards
  #dinputs = new Scratch(); // [N, C, H, W], reused by backward after a training forward
  #cols = new Scratch(); // [N·C·KH·KW·P]: every chunk's columns of a training forward
  #chunkCols = new Scratch(); // [C·KH·KW, chunk·P] at inference, or to recompute them
  #chunkOut = new Scratch(); // [O, chunk·P]: a chunk's outputs, or its dvalues, by channel
  #dcols = new Scratch(); // [C·KH·KW, chunk·P]
  #colsViews = new Views();
  #outViews = new Views();
  #dvaluesViews = new Views();
  #winograd = new WinogradBuffers(); // forward's tiles and products
  #winogradGradient = new WinogradBuffers(); // the input gradient's
  #usedWinograd = false; // whether the cached forward took Winograd's algorithm
  #gpuInputs?: GpuTensor; // [N, C, H, W], cached by gpuForward for gpuBackward
  #gpuGeometry?: ConvGeometry; // of the cached gpuForward

  /**
   * Creates the layer, drawing weights with `init` unless `weights` are given.
   *
   * @throws {RangeError} for sizes that are not positive integers, `"same"` padding with
   * a stride other than 1, an unknown `algorithm`, or `"winograd"` for a layer that is not
   * 3×3 with stride 1 and dilation 1.
   * @throws {TypeError} for `weights` or `biases` of the wrong shape.
   */
  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: number | readonly [number, number],
    options: Conv2DOptions = {},
  ) {
    const where = "new Conv2D";
    checkChannels(inChannels, "inChannels");
    checkChannels(outChannels, "outChannels");
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    const [kh, kw] = this.kernelSize = pair(kernelSize, "kernelSize", where);
    // Only an absent option takes its default: null is refused, as any other non-size.
    const [sh, sw] = this.stride = pair(
      options.stride === undefined ? 1 : options.stride,
      "stride",
      where,
    );
    const [dh, dw] = this.dilation = pair(
      options.dilation === undefined ? 1 : options.dilation,
      "dilation",
      where,
    );
    const padding = options.padding === undefined ? "valid" : options.padding;
    if (padding !== "same" && padding !== "valid" && !isPair(padding, 0)) {
      throw new RangeError(
        `${where}: padding must be "same", "valid", a non-negative integer or [height, width] of ` +
          `non-negative integers, got ${describe(padding)}`,
      );
    }
    let pads: [number, number, number, number]; // top, bottom, left, right
    if (padding === "same") {
      if (sh !== 1 || sw !== 1) {
        throw new RangeError(
          `${where}: padding "same" needs stride 1 (as PyTorch), got stride ${
            formatShape(this.stride)
          }; pad by a number instead`,
        );
      }
      const totalH = dh * (kh - 1), totalW = dw * (kw - 1);
      pads = [totalH >> 1, totalH - (totalH >> 1), totalW >> 1, totalW - (totalW >> 1)];
      this.padding = "same";
    } else {
      const [ph, pw] = this.padding = padding === "valid"
        ? [0, 0]
        : pair(padding, "padding", where, 0);
      pads = [ph, ph, pw, pw];
    }
    this.#window = {
      kernelH: kh,
      kernelW: kw,
      strideH: sh,
      strideW: sw,
      dilationH: dh,
      dilationW: dw,
      padTop: pads[0],
      padBottom: pads[1],
      padLeft: pads[2],
      padRight: pads[3],
    };
    this.init = options.init ?? "he";
    const dtype = options.dtype ?? "float32";
    if (dtype !== "float32" && dtype !== "float64") {
      throw new TypeError(`${where}: dtype must be "float32" or "float64", got ${describe(dtype)}`);
    }
    if (options.bias !== undefined && typeof options.bias !== "boolean") {
      throw new TypeError(`${where}: bias must be true or false, got ${describe(options.bias)}`);
    }
    const shape = [outChannels, inChannels, kh, kw];
    checkAllocation(
      where,
      dtype,
      options.bias === false ? { weights: shape } : { weights: shape, biases: [outChannels] },
    );
    this.weights = new Param("weights", Tensor.zeros(shape, { dtype }));
    const initializer = getInitializer(this.init, where);
    if (options.weights !== undefined) {
      fillExplicit(this.weights.value, options.weights, "weights", where);
    } else {
      // Drawn in float64 and rounded once as each is stored: no temporary of the layer's size.
      const fanIn = inChannels * kh * kw, fanOut = outChannels * kh * kw;
      initializer(this.weights.value.data, fanIn, fanOut, resolveRandom(options));
    }
    if (options.bias !== false) {
      this.biases = new Param("biases", Tensor.zeros([outChannels], { dtype }));
      if (options.biases !== undefined) {
        fillExplicit(this.biases.value, options.biases, "biases", where);
      }
    } else if (options.biases !== undefined) {
      throw new TypeError(`${where}: biases were given for a layer built with bias: false`);
    }
    this.weightRegularizerL1 = checkPenalty(options, "weightRegularizerL1", where);
    this.weightRegularizerL2 = checkPenalty(options, "weightRegularizerL2", where);
    this.biasRegularizerL1 = checkPenalty(options, "biasRegularizerL1", where);
    this.biasRegularizerL2 = checkPenalty(options, "biasRegularizerL2", where);
    const algorithm = options.algorithm ?? "auto";
    if (!ALGORITHMS.includes(algorithm)) {
      throw new RangeError(
        `${where}: algorithm must be "auto", "im2col" or "winograd", got ${describe(algorithm)}`,
      );
    }
    if (algorithm === "winograd" && !isWinogradWindow(this.#window)) {
      throw new RangeError(
        `${where}: algorithm "winograd" needs a 3×3 kernel with stride 1 and dilation 1, got ` +
          `kernel ${pairText(this.kernelSize)}, stride ${formatShape(this.stride)}, dilation ${
            formatShape(this.dilation)
          }; use "im2col" or "auto"`,
      );
    }
    this.algorithm = algorithm;
  }

  /** Rebuilds a layer from {@linkcode Conv2D.config} (weights are drawn anew). */
  static fromConfig(config: JsonObject): Conv2D {
    const { inChannels, outChannels, kernelSize, ...options } = config as unknown as
      & { inChannels: number; outChannels: number; kernelSize: number | [number, number] }
      & Conv2DOptions;
    return new Conv2D(inChannels, outChannels, kernelSize, options);
  }

  /** Element type of the parameters. */
  get dtype(): DType {
    return this.weights.dtype;
  }

  /**
   * `inputs` [N, inChannels, H, W] → outputs [N, outChannels, OH, OW]. A training forward
   * reuses its buffers (see `ForwardOptions`) and keeps the unrolled columns for backward.
   *
   * @throws {TypeError} for inputs that are not 4-D, have another channel count or dtype, or
   * are smaller than the kernel.
   */
  forward(inputs: Tensor, options?: ForwardOptions): Tensor {
    const window = this.#window;
    const [batch, channels, height, width, outH, outW] = checkImages(
      inputs,
      "Conv2D.forward",
      window,
      this.inChannels,
      this.dtype,
    );
    this.#inputs = inputs;
    const training = this.#training = options?.training === true;
    const dtype = this.dtype, out = this.outChannels;
    const positions = outH * outW, depth = channels * window.kernelH * window.kernelW;
    const shape = [batch, out, outH, outW];
    checkPassAllocation("Conv2D.forward", dtype, { outputs: shape }, training);
    const backend = getBackend();
    const outputs = training // [N, O, OH, OW]
      ? this.#outputs.get(dtype, shape, backend)
      : Tensor.zeros(shape, { dtype });
    const x = inputs.data, w = this.weights.value.data, y = outputs.data;
    const geometry = { ...window, batch, channels, height, width, outChannels: out, outH, outW };
    this.#colsKept = false;
    this.#usedWinograd = this.#takesWinograd(
      backend,
      batch * ((outH + 1) >> 1) * ((outW + 1) >> 1),
      batch,
    );
    if (this.#usedWinograd) {
      this.#winograd.run(
        backend,
        dtype,
        x,
        (u) => winogradKernels(w, out, channels, u, false),
        y,
        winogradShape(geometry),
        this.biases?.value.data,
      );
      return outputs;
    }
    if (backend.conv2dForward?.(x, w, this.biases?.value.data, y, geometry)) return outputs;
    const chunk = samplesPerChunk(batch, depth, positions);
    const allCols = training ? this.#cols.get(dtype, [batch * depth * positions]).data : null;
    this.#colsKept = training;
    for (let first = 0; first < batch; first += chunk) {
      const count = Math.min(chunk, batch - first);
      const cols = allCols // [C·KH·KW, count·P]
        ? this.#colsViews.get(allCols, first * depth * positions, count * depth * positions)
        : this.#chunkCols.get(dtype, [depth, count * positions]).data;
      im2col(x, first, count, channels, height, width, window, outH, outW, cols);
      if (count === 1) {
        // One sample's [O, P] outputs are already where NCHW wants them.
        const target = this.#outViews.get(y, first * out * positions, out * positions);
        backend.matmul(w, cols, target, out, depth, positions);
        if (this.biases) addChannelBias(target, this.biases.value.data, 1, out, positions);
      } else {
        const byChannel = this.#chunkOut.get(dtype, [out, count * positions]).data;
        backend.matmul(w, cols, byChannel, out, depth, count * positions);
        scatterChannels(byChannel, y, first, count, out, positions, this.biases?.value.data);
      }
    }
    return outputs;
  }

  // dweights += dvalues·colsᵀ   dbiases += Σ_{n,y,x} dvalues   dcols = Wᵀ·dvalues → col2im
  /**
   * `dvalues` [N, outChannels, OH, OW] → dinputs [N, inChannels, H, W], left uncomputed
   * when `options.inputGradient` is false.
   */
  backward(dvalues: Tensor, options?: BackwardOptions): Tensor {
    const inputs = this.#inputs;
    if (!inputs) throw new Error("Conv2D.backward: call forward first");
    const window = this.#window;
    const [batch, channels, height, width] = inputs.shape;
    const [outH, outW] = outputSize(window, height, width);
    const dtype = this.dtype, out = this.outChannels;
    const expected = [batch, out, outH, outW];
    if (
      !(dvalues instanceof Tensor) || dvalues.dtype !== dtype ||
      !sameShape(dvalues.shape, expected)
    ) {
      const got = dvalues instanceof Tensor
        ? `${dvalues.dtype} ${formatShape(dvalues.shape)}`
        : describeKind(dvalues);
      throw new TypeError(
        `Conv2D.backward: dvalues is ${got}, expected ${dtype} ${
          formatShape(expected)
        } like the last forward's outputs`,
      );
    }
    const wantInputs = options?.inputGradient !== false;
    const backend = getBackend();
    // An input gradient nobody reads is not placed in the backend's memory (never freed).
    const dinputs = this.#training // [N, C, H, W]
      ? this.#dinputs.get(dtype, inputs.shape, wantInputs ? backend : undefined)
      : Tensor.zeros(inputs.shape, { dtype });
    const x = inputs.data, w = this.weights.value.data, dv = dvalues.data;
    const dw = this.weights.grad.data, dx = dinputs.data;
    const dbiases = this.biases?.grad.data;
    const geometry = { ...window, batch, channels, height, width, outChannels: out, outH, outW };
    // Winograd's input gradient: dvalues convolved with the kernels turned by 180° and their
    // channels swapped, zeros 2 − p on each side.
    const winograd = this.#usedWinograd;
    const dxHere = wantInputs && !winograd ? dx : null;
    // The weights' gradient by Winograd's algorithm too where the backend has it (measured
    // faster on every layer "auto" takes Winograd for: docs/speed.md), else by im2col.
    const shape = winogradShape(geometry);
    if (!winograd || !this.#winograd.weights(backend, x, dv, dw, dbiases, shape)) {
      const lowered = backend.conv2dBackward?.(x, w, dv, dw, dbiases, dxHere, geometry);
      if (!lowered) this.#lowerBackward(inputs, dv, dx, dxHere !== null, backend);
    }
    if (winograd && wantInputs) {
      this.#winogradGradient.run(
        backend,
        dtype,
        dv,
        (u) => winogradKernels(w, out, channels, u, true),
        dx,
        winogradShape(geometry, true),
      );
    }
    addPenaltyGradient(this.weights, this.weightRegularizerL1, this.weightRegularizerL2);
    if (this.biases) {
      addPenaltyGradient(this.biases, this.biasRegularizerL1, this.biasRegularizerL2);
    }
    return dinputs;
  }

  // Whether forward computes by Winograd's algorithm: "winograd" always (the constructor
  // checked the window); "auto" where it measured faster than im2col (bench/conv_algorithms.ts,
  // docs/speed.md): Winograd's window, float32, at least 16 channels in and out (with fewer,
  // the products are too thin to gain: W4's first layer, one channel in, took 1.7× im2col's
  // time), a batch of tiles worth a job (16·channels·tiles ≥ 2¹⁶), and a backend that runs
  // the whole convolution itself (the wasm backend's pool job; with the JavaScript
  // transforms and a product per plane, im2col was as fast or faster).
  #takesWinograd(backend: Backend, tiles: number, batch: number): boolean {
    if (this.algorithm !== "auto") return this.algorithm === "winograd";
    const channels = Math.min(this.inChannels, this.outChannels);
    const widest = Math.max(this.inChannels, this.outChannels);
    // One sample's transformed tiles must fit a chunk: past that (large images) the tile
    // buffers cannot be cut smaller, and im2col's lowering in blocks keeps within memory.
    return isWinogradWindow(this.#window) && this.dtype === "float32" &&
      channels >= AUTO_WINOGRAD_CHANNELS && 16 * channels * tiles >= RESIDENT_MIN_ELEMENTS &&
      16 * widest * (tiles / batch) <= WINOGRAD_CHUNK_ELEMENTS &&
      typeof (backend as Partial<WinogradTransforms>).winogradConvolution === "function";
  }

  // The backward pass as three products per chunk of samples, for backends without their own
  // convolution: dweights += dvalues·colsᵀ, dcols = Wᵀ·dvalues, folded into dx by col2im.
  #lowerBackward(
    inputs: Tensor,
    dv: FloatArray,
    dx: FloatArray,
    wantInputs: boolean,
    backend: Backend,
  ): void {
    const window = this.#window;
    const [batch, channels, height, width] = inputs.shape;
    const [outH, outW] = outputSize(window, height, width);
    const dtype = this.dtype, out = this.outChannels;
    const positions = outH * outW, depth = channels * window.kernelH * window.kernelW;
    const chunk = samplesPerChunk(batch, depth, positions);
    const allCols = this.#colsKept ? this.#cols.get(dtype, [batch * depth * positions]).data : null;
    const x = inputs.data, w = this.weights.value.data;
    const dw = this.weights.grad.data;
    const dbiases = this.biases?.grad.data;
    if (wantInputs) dx.fill(0);
    for (let first = 0; first < batch; first += chunk) {
      const count = Math.min(chunk, batch - first);
      let cols: FloatArray; // [C·KH·KW, count·P]
      if (allCols) {
        cols = this.#colsViews.get(allCols, first * depth * positions, count * depth * positions);
      } else {
        cols = this.#chunkCols.get(dtype, [depth, count * positions]).data;
        im2col(x, first, count, channels, height, width, window, outH, outW, cols);
      }
      let byChannel: FloatArray; // [O, count·P]
      if (count === 1) {
        byChannel = this.#dvaluesViews.get(dv, first * out * positions, out * positions);
        if (dbiases) sumChannels(byChannel, dbiases, 1, out, positions);
      } else {
        byChannel = this.#chunkOut.get(dtype, [out, count * positions]).data;
        gatherChannels(dv, byChannel, first, count, out, positions, dbiases);
      }
      backend.matmulTransB(byChannel, cols, dw, out, depth, count * positions, true);
      if (!wantInputs) continue;
      const dcols = this.#dcols.get(dtype, [depth, count * positions]).data;
      backend.matmulTransA(w, byChannel, dcols, out, depth, count * positions);
      col2im(dcols, first, count, channels, height, width, window, outH, outW, dx);
    }
  }

  /**
   * {@linkcode Conv2D.forward} on the device: `inputs` [N, inChannels, H, W] → outputs
   * [N, outChannels, OH, OW], one implicit product.
   *
   * @throws {TypeError} for inputs that are not float32 `[N, inChannels, H, W]` or are
   * smaller than the kernel.
   */
  gpuForward(ctx: GpuContext, inputs: GpuTensor): GpuTensor {
    const window = this.#window;
    const [batch, channels, height, width, outH, outW] = gpuImages(
      inputs,
      "Conv2D.gpuForward",
      window,
      this.inChannels,
    );
    const out = this.outChannels;
    const g = { ...window, batch, channels, height, width, outChannels: out, outH, outW };
    const outputs = ctx.buffer(this, "outputs", [batch, out, outH, outW]);
    const weights = ctx.param(this.weights).value;
    const biases = this.biases ? ctx.param(this.biases).value : undefined;
    gpuConvForward(ctx, this, "forward", g, inputs, weights, biases, outputs);
    this.#gpuInputs = inputs;
    this.#gpuGeometry = g;
    return outputs;
  }

  // dweights += Σ_{n,p} dvalues·x at each tap   dbiases += Σ_{n,p} dvalues
  // dinputs[pixel] = Σ over the (output position, tap) pairs that read it of W·dvalues
  /**
   * {@linkcode Conv2D.backward} on the device: `dvalues` [N, outChannels, OH, OW] → dinputs
   * [N, inChannels, H, W], left uncomputed when `options.inputGradient` is false.
   */
  gpuBackward(ctx: GpuContext, dvalues: GpuTensor, options?: GpuBackwardOptions): GpuTensor {
    const inputs = this.#gpuInputs, g = this.#gpuGeometry;
    if (!inputs || !g) throw new Error("Conv2D.gpuBackward: call gpuForward first");
    const expected = [g.batch, g.outChannels, g.outH, g.outW];
    if (dvalues.dtype !== "float32" || !sameShape(dvalues.shape, expected)) {
      throw new TypeError(
        `Conv2D.gpuBackward: dvalues is ${dvalues.dtype} ${
          formatShape(dvalues.shape)
        }, expected float32 ${formatShape(expected)} like the last gpuForward's outputs`,
      );
    }
    const weights = ctx.param(this.weights);
    gpuConvWeightGradient(ctx, this, "dweights", g, inputs, dvalues, weights.grad);
    gpuAddPenaltyGradient(
      ctx,
      this,
      this.weights,
      this.weightRegularizerL1,
      this.weightRegularizerL2,
    );
    if (this.biases) {
      const dbiases = ctx.param(this.biases).grad;
      const positions = g.outH * g.outW;
      gpuSumChannels(ctx, this, "dbiases", dvalues, dbiases, g.batch, g.outChannels, positions);
      gpuAddPenaltyGradient(
        ctx,
        this,
        this.biases,
        this.biasRegularizerL1,
        this.biasRegularizerL2,
      );
    }
    const dinputs = ctx.buffer(this, "dinputs", inputs.shape);
    if (options?.inputGradient === false) return dinputs;
    gpuConvInputGradient(ctx, this, "dinputs", g, dvalues, weights.value, dinputs);
    return dinputs;
  }

  /** {@linkcode Conv2D.regularizationLoss} on the device, added to `sink`. */
  gpuRegularization(ctx: GpuContext, sink: GpuSink): void {
    gpuPenalty(ctx, this, this.weights, this.weightRegularizerL1, this.weightRegularizerL2, sink);
    if (this.biases) {
      gpuPenalty(ctx, this, this.biases, this.biasRegularizerL1, this.biasRegularizerL2, sink);
    }
  }

  /** `[weights, biases]`, or `[weights]` without biases. */
  params(): Param[] {
    return this.biases ? [this.weights, this.biases] : [this.weights];
  }

  /** PyTorch's `nn.Conv2d` names, in the same layout `[out, in, kh, kw]`: `weight`, `bias`. */
  torchNames(): Record<string, TorchName> {
    return { weights: { torch: "weight" }, biases: { torch: "bias" } };
  }

  /** The L1/L2 penalties of the current weights and biases. */
  regularizationLoss(): number {
    const biases = this.biases
      ? penalty(this.biases, this.biasRegularizerL1, this.biasRegularizerL2)
      : 0;
    return penalty(this.weights, this.weightRegularizerL1, this.weightRegularizerL2) + biases;
  }

  /** Constructor arguments as JSON (without the weights, which are saved as tensors). */
  config(): JsonObject {
    const config: JsonObject = {
      inChannels: this.inChannels,
      outChannels: this.outChannels,
      kernelSize: pairConfig(this.kernelSize),
    };
    Object.assign(config, this.#options());
    config.init = this.init;
    config.dtype = this.dtype;
    for (const key of REGULARIZERS) if (this[key] !== 0) config[key] = this[key];
    return config;
  }

  /** `Conv2D(in=1, out=32, kernel=3×3, padding=1)`: the options that differ from the defaults. */
  toString(): string {
    const parts = [
      `in=${this.inChannels}`,
      `out=${this.outChannels}`,
      `kernel=${pairText(this.kernelSize)}`,
    ];
    for (const [key, value] of Object.entries(this.#options())) {
      const text = typeof value === "string"
        ? `"${value}"`
        : Array.isArray(value)
        ? formatShape(value as number[])
        : String(value);
      parts.push(`${key}=${text}`);
    }
    for (const key of REGULARIZERS) if (this[key] !== 0) parts.push(`${key}=${this[key]}`);
    return `Conv2D(${parts.join(", ")})`;
  }

  // stride, padding, dilation and bias where they differ from the defaults.
  #options(): JsonObject {
    const options: JsonObject = {};
    const [sh, sw] = this.stride, [dh, dw] = this.dilation;
    if (sh !== 1 || sw !== 1) options.stride = pairConfig(this.stride);
    if (this.padding === "same") options.padding = "same";
    else if (this.padding[0] !== 0 || this.padding[1] !== 0) {
      options.padding = pairConfig(this.padding);
    }
    if (dh !== 1 || dw !== 1) options.dilation = pairConfig(this.dilation);
    if (!this.biases) options.bias = false;
    if (this.algorithm !== "auto") options.algorithm = this.algorithm;
    return options;
  }
}

function samplesPerChunk(batch: number, depth: number, positions: number): number {
  if (positions >= SAMPLE_POSITIONS) return 1;
  return Math.max(1, Math.min(batch, Math.floor(CHUNK_ELEMENTS / (depth * positions))));
}

// y[first + s, o, p] = byChannel[o, s·P + p] + bias[o]: a chunk's [O, count·P] products
// into NCHW order.
function scatterChannels(
  byChannel: FloatArray,
  y: FloatArray,
  first: number,
  count: number,
  out: number,
  positions: number,
  bias?: FloatArray,
): void {
  const rowLength = count * positions;
  for (let s = 0; s < count; s++) {
    for (let o = 0; o < out; o++) {
      const b = bias ? bias[o] : 0;
      const from = o * rowLength + s * positions;
      const to = ((first + s) * out + o) * positions;
      for (let p = 0; p < positions; p++) y[to + p] = byChannel[from + p] + b;
    }
  }
}

// byChannel[o, s·P + p] = dv[first + s, o, p]: the inverse of scatterChannels; with `sums`,
// also sums[o] += Σ_{s,p} dv[first + s, o, p] (the biases' gradient) on the way.
function gatherChannels(
  dv: FloatArray,
  byChannel: FloatArray,
  first: number,
  count: number,
  out: number,
  positions: number,
  sums?: FloatArray,
): void {
  const rowLength = count * positions;
  for (let s = 0; s < count; s++) {
    for (let o = 0; o < out; o++) {
      const to = o * rowLength + s * positions;
      const from = ((first + s) * out + o) * positions;
      let total = 0;
      for (let p = 0; p < positions; p++) {
        const v = dv[from + p];
        byChannel[to + p] = v;
        total += v;
      }
      if (sums) sums[o] += total;
    }
  }
}

// y[s, o, p] += bias[o] for `count` samples of [O, P].
function addChannelBias(
  y: FloatArray,
  bias: FloatArray,
  count: number,
  out: number,
  positions: number,
): void {
  for (let s = 0; s < count; s++) {
    for (let o = 0; o < out; o++) {
      const b = bias[o];
      const start = (s * out + o) * positions;
      for (let p = 0; p < positions; p++) y[start + p] += b;
    }
  }
}

// sums[o] += Σ_{n,p} dv[n, o, p]
function sumChannels(
  dv: FloatArray,
  sums: FloatArray,
  batch: number,
  out: number,
  positions: number,
): void {
  for (let o = 0; o < out; o++) {
    let total = 0;
    for (let n = 0; n < batch; n++) {
      const start = (n * out + o) * positions;
      for (let p = 0; p < positions; p++) total += dv[start + p];
    }
    sums[o] += total;
  }
}
