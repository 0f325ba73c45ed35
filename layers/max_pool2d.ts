import { getBackend } from "../backends/selection.ts";
import { maxPoolBackwardPlanes, maxPoolPlanes } from "../backends/_pooling.ts";
import type { Backend, PoolGeometry } from "../core/backend.ts";
import type { JsonObject } from "../core/json.ts";
import type { ForwardOptions, Layer } from "../core/layer.ts";
import type { Param } from "../core/param.ts";
import { Scratch } from "../core/_scratch.ts";
import { Tensor } from "../core/tensor.ts";
import { flatIndex, type GpuContext, type GpuLayer, type GpuTensor, gridFor } from "../core/gpu.ts";
import { kernel } from "../backends/webgpu_ops.ts";
import { checkGpuGradient, gpuImages, POOL_GEOMETRY, poolWords } from "./_gpu_conv.ts";
import {
  checkImages,
  checkPooledGradient,
  poolConfig,
  type PoolOptions,
  type PoolSizes,
  poolSizes,
  poolText,
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
export class MaxPool2D implements Layer, GpuLayer {
  /** Registry name. */
  readonly kind = "MaxPool2D";
  /**
   * True: the next layer may write over the outputs of a training forward (backward reads the
   * argmax indices, never the outputs).
   */
  readonly outputsFree: boolean = true;
  /** `[KH, KW]` */
  readonly kernelSize: readonly [number, number];
  /** `[SH, SW]` */
  readonly stride: readonly [number, number];
  /** `[PH, PW]` */
  readonly padding: readonly [number, number];
  readonly #sizes: PoolSizes;
  #inputs?: Tensor; // [N, C, H, W], cached by forward for backward
  #training = false;
  #argmax: Int32Array = new Int32Array(0); // [N·C·OH·OW]: the input index each output came from
  #trainingArgmax: Int32Array = new Int32Array(0); // the same, reused by training forwards
  #geometry?: PoolGeometry; // of the cached forward
  #keys?: Int32Array; // the last float32 inputs' bits, a view kept while they are the same
  #outputs = new Scratch(); // reused by training forwards
  #dinputs = new Scratch(); // reused by backward after a training forward
  #gpuInputs?: GpuTensor; // [N, C, H, W], cached by gpuForward for gpuBackward
  #gpuArgmax?: GpuTensor; // [N, C, OH, OW] u32: the input index each output came from

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
    const backend = getBackend();
    const outputs = this.#training
      ? this.#outputs.get(inputs.dtype, shape, backend)
      : Tensor.zeros(shape, { dtype: inputs.dtype });
    const size = outputs.size;
    if (this.#training && this.#trainingArgmax.length < size) {
      this.#trainingArgmax = indices(backend, size);
    }
    this.#argmax = this.#training ? this.#trainingArgmax : new Int32Array(size);
    const planes = batch * channels;
    const g = this.#geometry = { ...window, planes, height, width, outH, outW };
    const x = inputs.data;
    if (backend.maxPool2dForward?.(x, outputs.data, this.#argmax, g)) return outputs;
    let keys: Int32Array | null = null; // float32 bits, for the branch-free comparisons
    if (x instanceof Float32Array) {
      const kept = this.#keys;
      const same = kept !== undefined && kept.buffer === x.buffer &&
        kept.byteOffset === x.byteOffset && kept.length === x.length;
      keys = same ? kept : (this.#keys = new Int32Array(x.buffer, x.byteOffset, x.length));
    }
    maxPoolPlanes(
      x,
      keys,
      outputs.data,
      this.#argmax,
      0,
      planes,
      height,
      width,
      outH,
      outW,
      window,
    );
    return outputs;
  }

  // dinputs[argmax] += dvalues: each output's gradient goes to the input that won.
  /** `dvalues` [N, C, OH, OW] → dinputs [N, C, H, W] */
  backward(dvalues: Tensor): Tensor {
    const inputs = this.#inputs, g = this.#geometry;
    if (!inputs || !g) throw new Error("MaxPool2D.backward: call forward first");
    checkPooledGradient(dvalues, inputs, this.#sizes.window, "MaxPool2D.backward");
    const backend = getBackend();
    const dinputs = this.#training
      ? this.#dinputs.get(inputs.dtype, inputs.shape, backend)
      : Tensor.zeros(inputs.shape, { dtype: inputs.dtype });
    const dx = dinputs.data, dv = dvalues.data, argmax = this.#argmax;
    if (backend.maxPool2dBackward?.(dv, dx, argmax, g)) return dinputs;
    dx.fill(0);
    maxPoolBackwardPlanes(dv, dx, argmax, 0, g.planes, g.outH * g.outW);
    return dinputs;
  }

  /**
   * {@linkcode MaxPool2D.forward} on the device: `inputs` [N, C, H, W] → outputs
   * [N, C, OH, OW], the winners' indices kept for gpuBackward.
   *
   * @throws {TypeError} for inputs that are not float32 4-D or are smaller than the kernel.
   */
  gpuForward(ctx: GpuContext, inputs: GpuTensor): GpuTensor {
    const window = this.#sizes.window;
    const [batch, channels, height, width, outH, outW] = gpuImages(
      inputs,
      "MaxPool2D.gpuForward",
      window,
    );
    const shape = [batch, channels, outH, outW];
    const outputs = ctx.buffer(this, "outputs", shape);
    const argmax = ctx.buffer(this, "argmax", shape, "uint32");
    const uniforms = poolWords(window, batch * channels, height, width, outH, outW);
    const code = kernel("MaxPool2D.forward", MAX_POOL_FORWARD);
    ctx.run(this, "forward", code, [inputs, outputs, argmax], uniforms, gridFor(outputs.size));
    this.#gpuInputs = inputs;
    this.#gpuArgmax = argmax;
    return outputs;
  }

  // dinputs[i] = Σ dvalues[o] over the outputs o whose window holds i and whose winner is i
  /** {@linkcode MaxPool2D.backward} on the device: `dvalues` [N, C, OH, OW] → dinputs [N, C, H, W]. */
  gpuBackward(ctx: GpuContext, dvalues: GpuTensor): GpuTensor {
    const inputs = this.#gpuInputs, argmax = this.#gpuArgmax;
    if (!inputs || !argmax) throw new Error("MaxPool2D.gpuBackward: call gpuForward first");
    const [batch, channels, height, width] = inputs.shape;
    const [, , outH, outW] = argmax.shape;
    checkGpuGradient(dvalues, argmax.shape, "MaxPool2D.gpuBackward");
    const dinputs = ctx.buffer(this, "dinputs", inputs.shape);
    const uniforms = poolWords(this.#sizes.window, batch * channels, height, width, outH, outW);
    const code = kernel("MaxPool2D.backward", MAX_POOL_BACKWARD);
    ctx.run(this, "backward", code, [dvalues, argmax, dinputs], uniforms, gridFor(dinputs.size));
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

// outputs[o] = the largest input of o's window, argmax[o] its flat index: compared by the
// order keys of MaxPool2D's CPU loop (−0 ties +0, a NaN wins), so that the first of equals
// wins as there.
const MAX_POOL_FORWARD = /* wgsl */ `${POOL_GEOMETRY}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> argmax: array<u32>;
fn orderKey(v: f32) -> i32 {
  let bits = bitcast<i32>(v);
  let magnitude = bits & 0x7fffffff;
  let nan = (0x7f800000 - magnitude) >> 31u; // −1 for a NaN, else 0
  let flip = (bits >> 31u) & ~nan;
  return (magnitude ^ flip) - flip;
}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${flatIndex()}
  if (i >= p.planes * p.outH * p.outW) { return; }
  let w = windowOf(i);
  var at = w.base + w.rows.x * p.width + w.columns.x;
  var best = orderKey(x[at]);
  for (var ih = w.rows.x; ih < w.rows.y; ih++) {
    for (var iw = w.columns.x; iw < w.columns.y; iw++) {
      let j = w.base + ih * p.width + iw;
      let key = orderKey(x[j]);
      if (key > best) {
        best = key;
        at = j;
      }
    }
  }
  out[i] = x[at];
  argmax[i] = at;
}`;

// Gathered per input, in the order the CPU adds them (outputs row-major), so the sums agree.
const MAX_POOL_BACKWARD = /* wgsl */ `${POOL_GEOMETRY}
@group(0) @binding(1) var<storage, read> dv: array<f32>;
@group(0) @binding(2) var<storage, read> argmax: array<u32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${flatIndex()}
  if (i >= p.planes * p.height * p.width) { return; }
  let c = coverOf(i);
  var sum = 0.0;
  for (var oh = c.rows.x; oh < c.rows.y; oh++) {
    for (var ow = c.columns.x; ow < c.columns.y; ow++) {
      let o = (c.plane * p.outH + oh) * p.outW + ow;
      if (argmax[o] == i) { sum += dv[o]; }
    }
  }
  dx[i] = sum;
}`;

// The winners' indices of a training forward: where the backend places its buffers (so that
// its pooling can write them in place), else an ordinary array. `allocate` takes float dtypes
// only, so the indices are a float32 block seen as int32 (the same 4 bytes an element).
function indices(backend: Backend, size: number): Int32Array {
  const block = backend.allocate?.("float32", size);
  return block ? new Int32Array(block.buffer, block.byteOffset, size) : new Int32Array(size);
}
