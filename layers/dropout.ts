import { describe } from "../core/_describe.ts";
import { expectLike, expectTensor } from "../core/_checks.ts";
import type { JsonObject } from "../core/json.ts";
import type { ForwardOptions, Layer } from "../core/layer.ts";
import type { Param } from "../core/param.ts";
import { type RandomOptions, type RandomState, resolveRandom } from "../core/random.ts";
import { Scratch } from "../core/_scratch.ts";
import type { FloatArray, Tensor } from "../core/tensor.ts";
import {
  f32Bits,
  flatIndex,
  type GpuContext,
  type GpuForwardOptions,
  type GpuLayer,
  type GpuTensor,
  gridFor,
} from "../core/gpu.ts";
import { kernel } from "../backends/webgpu_ops.ts";

/** Options of {@linkcode Dropout}: where its masks' random numbers come from. */
export type DropoutOptions = RandomOptions;

/**
 * The book's inverted dropout (`Layer_Dropout`): while training, each input is zeroed with
 * probability `rate` and the survivors are scaled by `1 / (1 − rate)`, so the expected
 * value of every output equals its input; at inference it is the identity.
 *
 * Every training forward draws a new mask from the seeded generator, one draw per element
 * in row-major order, as NumPy's `binomial(1, 1 − rate)` draws it (so `RandomState(s)`
 * gives NumPy's mask for seed `s`); backward multiplies by that same mask.
 *
 * On the GPU the rule is the same (keep with probability `1 − rate`, scale by `1 / (1 − rate)`)
 * but the uniforms come from a counter-based hash of (key, step, element index), not from
 * the Mersenne Twister, so its masks differ from the CPU's. The key is two words drawn from
 * `random` at the layer's first training forward of each GPU fit (where a CPU step draws one
 * number per element), the step is the fit's step number: two fits from the same seed drop
 * the same elements, a later fit of the same layer draws a new key, and backward recomputes
 * its forward's mask exactly.
 *
 * Shapes: any → the same shape (`[batch, features]`, images `[batch, channels, H, W]`, …);
 * each element is dropped on its own. A training forward and the backward after it reuse
 * their buffers (see `ForwardOptions`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Dropout, Tensor } from "@chainrule/nn";
 *
 * const dropout = new Dropout(0.5, { seed: 1 });
 * const x = Tensor.filled([2, 4], 1, { dtype: "float64" });
 * const out = dropout.forward(x, { training: true }).toArray<number[][]>().flat();
 * assert.ok(out.every((v) => v === 0 || v === 2)); // dropped, or scaled by 1 / (1 − 0.5)
 * assert.equal(dropout.forward(x), x); // inference: the identity
 * ```
 */
export class Dropout implements Layer, GpuLayer {
  /** Registry name. */
  readonly kind = "Dropout";
  /**
   * True: the next layer may write over the outputs of a training forward (backward reads the mask,
   * never the outputs).
   */
  readonly outputsFree: boolean = true;
  /** Fraction of the inputs dropped while training, in [0, 1). */
  readonly rate: number;
  /** The seed given, kept for `config()`. */
  readonly seed?: number;
  /** The generator the masks are drawn from (snapshot it to resume a run exactly). */
  readonly random: RandomState;
  #mask?: FloatArray; // same shape as inputs: 0 or 1 / (1 − rate); absent at inference
  #inputs?: Tensor; // kept to check the shape of dvalues
  #masks = new Scratch(); // reused by training forwards
  #outputs = new Scratch();
  #dinputs = new Scratch();
  #gpuKeys = new WeakMap<GpuContext, readonly [number, number]>(); // the mask key of each fit
  #gpuMask?: readonly number[]; // [key0, key1, step] of the last training gpuForward
  #gpuShape?: readonly number[]; // the inputs' shape, cached by gpuForward for gpuBackward

  /**
   * Creates the layer.
   *
   * @throws {RangeError} when `rate` is not in [0, 1).
   */
  constructor(rate: number, options: DropoutOptions = {}) {
    if (typeof rate !== "number" || !(rate >= 0 && rate < 1)) {
      throw new RangeError(`new Dropout: rate must be a number in [0, 1), got ${describe(rate)}`);
    }
    this.rate = rate;
    this.seed = options.seed;
    this.random = resolveRandom(options);
  }

  /** Rebuilds the layer from {@linkcode Dropout.config}. */
  static fromConfig(config: JsonObject): Dropout {
    const { rate, ...options } = config as unknown as { rate: number } & DropoutOptions;
    return new Dropout(rate, options);
  }

  /** `inputs` [...] → outputs [...]: masked and scaled while training, else `inputs` itself */
  forward(inputs: Tensor, options: ForwardOptions = {}): Tensor {
    expectTensor(inputs, "Dropout.forward");
    this.#inputs = inputs;
    if (!options.training) {
      this.#mask = undefined;
      return inputs;
    }
    const x = inputs.data;
    const mask = this.#masks.get(inputs.dtype, inputs.shape).data;
    fillMask(mask, 1 - this.rate, this.random);
    const outputs = this.#outputs.get(inputs.dtype, inputs.shape);
    const y = outputs.data;
    for (let i = 0; i < x.length; i++) y[i] = x[i] * mask[i];
    this.#mask = mask;
    return outputs;
  }

  // dinputs = dvalues · mask (the mask already holds the 1 / (1 − rate) scale)
  /** `dvalues` [...] → dinputs [...] */
  backward(dvalues: Tensor): Tensor {
    const inputs = expectLike(dvalues, this.#inputs, "Dropout.backward");
    const mask = this.#mask;
    if (!mask) return dvalues;
    const dv = dvalues.data;
    const dinputs = this.#dinputs.get(inputs.dtype, inputs.shape);
    const dx = dinputs.data;
    for (let i = 0; i < dv.length; i++) dx[i] = dv[i] * mask[i];
    return dinputs;
  }

  /** {@linkcode Dropout.forward} on the device: `inputs` itself unless training. */
  gpuForward(ctx: GpuContext, inputs: GpuTensor, options: GpuForwardOptions = {}): GpuTensor {
    this.#gpuShape = inputs.shape;
    if (!options.training) {
      this.#gpuMask = undefined;
      return inputs;
    }
    let key = this.#gpuKeys.get(ctx);
    if (!key) {
      key = [this.random.nextUint32(), this.random.nextUint32()];
      this.#gpuKeys.set(ctx, key);
    }
    this.#gpuMask = [key[0], key[1], ctx.step >>> 0];
    const outputs = ctx.buffer(this, "outputs", inputs.shape);
    this.#gpuApplyMask(ctx, "forward", inputs, outputs);
    return outputs;
  }

  // dinputs = dvalues · mask, the mask recomputed from the forward's key and step
  /** {@linkcode Dropout.backward} on the device: `dvalues` itself after an inference forward. */
  gpuBackward(ctx: GpuContext, dvalues: GpuTensor): GpuTensor {
    const shape = this.#gpuShape;
    if (!shape) throw new Error("Dropout.gpuBackward: call gpuForward first");
    if (!this.#gpuMask) return dvalues;
    const dinputs = ctx.buffer(this, "dinputs", shape);
    this.#gpuApplyMask(ctx, "backward", dvalues, dinputs);
    return dinputs;
  }

  // out = x · mask for the mask of #gpuMask (the CPU's rule on the hash's uniforms)
  #gpuApplyMask(ctx: GpuContext, key: string, x: GpuTensor, out: GpuTensor): void {
    const keep = 1 - this.rate;
    const flipped = keep > 0.5;
    const q = Math.exp(Math.log(flipped ? keep : 1 - keep));
    const words = [x.size, ...this.#gpuMask!, f32Bits(q), flipped ? 1 : 0, f32Bits(1 / keep)];
    const code = kernel("Dropout", MASK);
    ctx.run(this, key, code, [x, out], words, gridFor(x.size));
  }

  /** None: dropout has no parameters. */
  params(): Param[] {
    return [];
  }

  /** `{ rate }`, and `seed` when one was given. */
  config(): JsonObject {
    return this.seed === undefined ? { rate: this.rate } : { rate: this.rate, seed: this.seed };
  }

  /** `Dropout(rate=0.1)` */
  toString(): string {
    return `Dropout(rate=${this.rate})`;
  }
}

// out = x · mask on the device, mask = scale where (u > q) ≠ flipped, else 0, as fillMask
// decides, with u the element's uniform in [0, 1) (24 bits): xxHash32 of the words
// (key1, step, index) seeded with key0, a counter-based generator (no state between draws).
const MASK = /* wgsl */ `
struct P { count: u32, key0: u32, key1: u32, step: u32, q: f32, flipped: u32, scale: f32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
fn lane(h: u32, word: u32) -> u32 {
  let mixed = h + word * 0xc2b2ae3du;
  return ((mixed << 17u) | (mixed >> 15u)) * 0x27d4eb2fu;
}
fn draw(i: u32) -> f32 {
  var h = lane(lane(lane(p.key0 + 0x165667b1u + 12u, p.key1), p.step), i);
  h ^= h >> 15u;
  h *= 0x85ebca77u;
  h ^= h >> 13u;
  h *= 0xc2b2ae3du;
  h ^= h >> 16u;
  return f32(h >> 8u) * 5.9604645e-8;
}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  ${flatIndex()}
  if (i >= p.count) { return; }
  let kept = (draw(i) > p.q) != (p.flipped != 0u);
  out[i] = x[i] * select(0.0, p.scale, kept);
}`;

// NumPy's legacy binomial(1, keep) by inversion: one uniform u per element; with
// q = exp(log(1 − p)) for p = min(keep, 1 − keep), the draw is a success when u > q, and
// for keep > 0.5 NumPy returns 1 minus that draw.
function fillMask(mask: FloatArray, keep: number, random: RandomState): void {
  const scale = 1 / keep;
  const flipped = keep > 0.5;
  const q = Math.exp(Math.log(flipped ? keep : 1 - keep));
  for (let i = 0; i < mask.length; i++) {
    const success = random.random() > q;
    mask[i] = success !== flipped ? scale : 0;
  }
}
