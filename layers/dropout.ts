import { describe } from "../core/_describe.ts";
import { expectLike, expectTensor } from "../core/_checks.ts";
import type { JsonObject } from "../core/json.ts";
import type { ForwardOptions, Layer } from "../core/layer.ts";
import type { Param } from "../core/param.ts";
import { type RandomOptions, type RandomState, resolveRandom } from "../core/random.ts";
import { Scratch } from "../core/_scratch.ts";
import type { FloatArray, Tensor } from "../core/tensor.ts";

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
export class Dropout implements Layer {
  /** Registry name. */
  readonly kind = "Dropout";
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
